// Small progressive enhancements; every form also works without JavaScript.
"use strict";

// Forms that destroy something ask first.
document.addEventListener("submit", (event) => {
  const message = event.target.dataset && event.target.dataset.confirm;
  if (message && !window.confirm(message)) event.preventDefault();
});

// Key / Value rows: add from the formset's empty_form template, move, and keep ORDER in step.
function renumber(list) {
  list.querySelectorAll(".kv-row").forEach((row, index) => {
    const order = row.querySelector("input.order");
    if (order) order.value = index + 1;
  });
}

document.addEventListener("click", (event) => {
  const button = event.target.closest("button");
  if (!button) return;
  if (button.classList.contains("add-row")) {
    event.preventDefault();  // without this script the button asks the server for the row
    const prefix = button.dataset.prefix;
    const total = document.getElementById(`id_${prefix}-TOTAL_FORMS`);
    const template = document.getElementById(`${prefix}-empty`);
    const list = document.getElementById(`${prefix}-rows`);
    const html = template.innerHTML.replace(/__prefix__/g, total.value);
    list.insertAdjacentHTML("beforeend", html);
    total.value = Number(total.value) + 1;
    const row = list.lastElementChild;
    renumber(list);
    if (window.htmx) window.htmx.process(row);
    const first = row.querySelector("input[type=text]");
    if (first) first.focus();
  } else if (button.classList.contains("move-up") || button.classList.contains("move-down")) {
    const row = button.closest(".kv-row");
    const list = row.parentElement;
    if (button.classList.contains("move-up") && row.previousElementSibling) {
      list.insertBefore(row, row.previousElementSibling);
    } else if (button.classList.contains("move-down") && row.nextElementSibling) {
      list.insertBefore(row.nextElementSibling, row);
    }
    renumber(list);
    button.focus();
  }
});

document.addEventListener("change", (event) => {
  const target = event.target;
  if (target.matches(".kv-row .remove input")) {
    target.closest(".kv-row").classList.toggle("removed", target.checked);
  }
  if (target.id === "id_provider") filterConnections(target);
});

// The connection picker shows only connections of the chosen cloud provider.
function filterConnections(providerSelect) {
  const select = document.getElementById("id_connection");
  if (!select) return;
  const provider = providerSelect.value;
  for (const option of select.options) {
    const hide = Boolean(provider && option.dataset.provider && option.dataset.provider !== provider);
    option.hidden = hide;
    option.disabled = hide;
    if (hide && option.selected) select.value = "";
  }
}

document.addEventListener("DOMContentLoaded", () => {
  const provider = document.getElementById("id_provider");
  if (provider) filterConnections(provider);
});

// Copy buttons: a CEL path or a curl line to the clipboard.
document.addEventListener("click", async (event) => {
  const button = event.target.closest("button.copy");
  if (!button) return;
  // Kept on window too: the clipboard API needs a secure context and a user's permission.
  window.lastCopied = button.dataset.copy;
  try {
    await navigator.clipboard.writeText(button.dataset.copy);
  } catch (error) {
    /* the path stays visible beside the button */
  }
  const label = button.textContent;
  button.textContent = "Copied";
  setTimeout(() => { button.textContent = label; }, 1200);
});

// "Did you mean "/v1/orders/"?": put the quoted text in its field, and check it again.
document.addEventListener("click", (event) => {
  const button = event.target.closest("button.cel-fix");
  if (!button) return;
  const field = document.querySelector(`[name="${CSS.escape(button.dataset.field)}"]`);
  if (!field) return;
  field.value = button.dataset.fix;
  field.focus();
  field.dispatchEvent(new Event("input", { bubbles: true }));
});

// The Input panel: a value's path goes in at the cursor of the last CEL field focused.
let lastCelField = null;
document.addEventListener("focusin", (event) => {
  if (event.target.matches("#cloud-function input.cel, #cloud-function textarea[name=body]")) lastCelField = event.target;
});
document.addEventListener("click", (event) => {
  const button = event.target.closest("button.insert-path");
  if (!button || !lastCelField) return;
  const field = lastCelField;
  const start = field.selectionStart ?? field.value.length;
  const end = field.selectionEnd ?? start;
  field.value = field.value.slice(0, start) + button.dataset.path + field.value.slice(end);
  field.focus();
  const caret = start + button.dataset.path.length;
  field.setSelectionRange(caret, caret);
  field.dispatchEvent(new Event("input", { bubbles: true }));
});

// "Cancel" in a confirmation just removes it.
document.addEventListener("click", (event) => {
  const button = event.target.closest("button.dismiss");
  if (button) button.closest(".confirm").remove();
});

// Elapsed time beside the spinner while a Test runs.
let elapsedTimer = null;
document.addEventListener("htmx:beforeRequest", (event) => {
  const spinner = document.getElementById("test-spinner");
  if (!spinner || event.detail.target.id !== "test-result") return;
  const started = performance.now();
  const out = spinner.querySelector(".elapsed");
  clearInterval(elapsedTimer);
  elapsedTimer = setInterval(() => {
    out.textContent = ((performance.now() - started) / 1000).toFixed(1);
  }, 100);
});
document.addEventListener("htmx:afterRequest", () => clearInterval(elapsedTimer));

// While Test runs htmx disables its button, and the browser drops focus to the page body;
// once the answer is in, focus goes back to the button that asked (unless the answer
// focused something itself, a confirmation's Send). A keyboard user goes on from there.
let testCaller = null;
document.addEventListener("htmx:beforeRequest", (event) => {
  if (event.detail.target.id !== "test-result") return;
  testCaller = event.detail.elt;
  // The seconds counter ticks ten times a second: not something to read aloud.
  const elapsed = document.querySelector("#test-spinner .elapsed");
  if (elapsed) elapsed.setAttribute("aria-live", "off");
});
document.addEventListener("htmx:afterRequest", (event) => {
  const caller = testCaller;
  if (!caller || event.detail.elt !== caller) return;
  testCaller = null;
  const lost = !document.activeElement || document.activeElement === document.body;
  if (lost && document.body.contains(caller)) caller.focus();
});

// A Test result is announced: #test-result is replaced whole, and a live region that
// arrives already filled says nothing, so its gist goes to the page's one announcer.
function resultSummary(result) {
  const parts = [];
  const badge = result.querySelector("p .badge");
  if (badge) parts.push(`Result: ${badge.closest("p").textContent}`);
  result.querySelectorAll(".error-box, .notice-box, #confirm-title").forEach((el) => {
    parts.push(el.textContent);
  });
  return parts.join(". ").replace(/\s+/g, " ").trim();
}

function announce(text) {
  const region = document.getElementById("announcer");
  if (!region || !text) return;
  region.textContent = "";
  // A change after a beat: the same words twice in a row are read twice.
  setTimeout(() => { region.textContent = text; }, 50);
}

document.addEventListener("htmx:afterSettle", (event) => {
  const target = event.detail.target;
  if (!target || target.id !== "test-result") return;
  const result = document.getElementById("test-result");
  if (result) announce(resultSummary(result));
});

// A connection created inline in the step editor joins the picker, selected.
document.body.addEventListener("connectionCreated", (event) => {
  const select = document.getElementById("id_connection");
  if (!select) return;
  const option = new Option(event.detail.name, event.detail.pk, true, true);
  option.dataset.provider = event.detail.provider;
  select.add(option);
  const provider = document.getElementById("id_provider");
  if (provider) provider.value = event.detail.provider;
});

// "New connection…" opens the inline form below the step form.
document.addEventListener("click", (event) => {
  const link = event.target.closest('a[href="#new-connection"]');
  const details = document.getElementById("new-connection");
  if (link && details) details.open = true;
});

// A polled part whose page is gone (its process deleted) or no longer allowed stops asking
// every second for nothing, and says so. Server errors (5xx) may pass: polling goes on.
document.addEventListener("htmx:responseError", (event) => {
  const elt = event.detail.elt;
  const status = event.detail.xhr.status;
  if (!elt || !/\bevery\b/.test(elt.getAttribute("hx-trigger") || "")) return;
  if (status < 400 || status >= 500) return;
  const notice = document.createElement("p");
  notice.className = "notice-box";
  notice.setAttribute("role", "status");
  notice.textContent = `This stopped updating: the server answered ${status}. Reload the page to see why.`;
  elt.replaceWith(notice);
});

// Leaving the step editor with unsaved changes asks first; Save, Test and the helpers submit.
let unsaved = false;
function editorField(target) {
  return target.form && target.form.id === "cloud-function" && target.name && !["curl", "operation"].includes(target.name);
}
document.addEventListener("input", (event) => { if (editorField(event.target)) unsaved = true; });
document.addEventListener("change", (event) => { if (editorField(event.target)) unsaved = true; });
document.addEventListener("submit", (event) => { if (event.target.id === "cloud-function") unsaved = false; });
document.addEventListener("htmx:afterRequest", (event) => {
  // An htmx Test saved the form before it ran.
  if (event.detail.successful && event.detail.target && event.detail.target.id === "test-result") unsaved = false;
});
window.addEventListener("beforeunload", (event) => {
  if (!unsaved) return;
  event.preventDefault();
  event.returnValue = "";
});
