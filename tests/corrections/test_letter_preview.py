"""Issue 11: the refusal letter's preview names the item ("not to change "Hypertensive
disorder""), never an empty pair of quotes, whichever part the patient flagged."""

import pytest

from tests.workspace import test_workspace as workspace

pytestmark = pytest.mark.django_db
world = workspace.world  # the staff workspace's record, people and items


@pytest.mark.parametrize("element", ["code", ""])
def test_the_refusal_preview_names_the_item(world, client, element):
    correction = workspace.in_review(world, workspace.flag(world, element=element))
    client.force_login(world["dr_gp"])
    response = workspace.post(
        client, correction, "deny", code="accurate", text="The readings were high in 2024.", preview=True
    )
    page = response.content.decode()
    preview = page[page.index('id="letter-preview"') :]
    assert "We have decided not to change &quot;Hypertensive disorder&quot;." in preview
    assert "not to change &quot;&quot;" not in page
