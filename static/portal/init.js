// The design system's scripts only enhance; every page works with them switched off.
import { initAll } from "../nhsuk/nhsuk-frontend.min.js";

initAll();
