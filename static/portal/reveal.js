// Shows the fields under a chosen radio (the phone number under "Phone", the address
// under "Letter") and hides the others. The design system's own reveal marks each radio
// aria-expanded, which a radio may not carry; this one changes only what is shown.
for (const group of document.querySelectorAll("[data-portal-reveal]")) {
  const sync = () => {
    for (const input of group.querySelectorAll("input[type=radio][data-reveals]")) {
      const target = document.getElementById(input.dataset.reveals);
      if (target) target.classList.toggle("nhsuk-radios__conditional--hidden", !input.checked);
    }
  };
  group.addEventListener("change", sync);
  sync();
}
