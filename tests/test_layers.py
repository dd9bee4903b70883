"""The architecture's dependency rules hold: import-linter's contracts in pyproject.toml
(the domain's layers point one way; web, api and demo sit side by side on top and never
import each other; audit is a leaf) are kept by the code as it is."""

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_the_layer_contracts_are_kept():
    linter = Path(sys.executable).with_name("lint-imports")
    run = subprocess.run([str(linter)], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert "0 broken" in run.stdout


def test_a_contract_that_is_broken_is_reported(tmp_path):
    """The check can fail: a contract forbidding what the code really does (api reads
    the policy in consent) is reported broken."""
    config = tmp_path / "contracts.ini"
    config.write_text(
        "[importlinter]\nroot_packages =\n    api\n    consent\n\n"
        "[importlinter:contract:wrong]\nname = api never imports consent\ntype = forbidden\n"
        "source_modules =\n    api\nforbidden_modules =\n    consent\n"
    )
    linter = Path(sys.executable).with_name("lint-imports")
    run = subprocess.run(
        [str(linter), "--config", str(config)], cwd=REPO, capture_output=True, text=True, timeout=300
    )
    assert run.returncode != 0
    assert "BROKEN" in run.stdout
