// Run first thing in <body>: the design system styles its enhanced components from
// these classes, so they are set before the page is drawn. A file, not inline code:
// the Content-Security-Policy runs no inline script.
document.body.className += " js-enabled" + ("noModule" in HTMLScriptElement.prototype ? " nhsuk-frontend-supported" : "");
