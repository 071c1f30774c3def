// The console shell: sign-in, navigation and a hash router
// (#/responses, #/responses/<id>, #/conversations, #/jobs, #/prompts, #/playground).

import { api, getKey, setKey } from "./api.js";
import { clear, errorBox, h } from "./dom.js";
import { playground } from "./playground.js";
import { conversationDetail, conversations, jobs, promptDetail, prompts, responseDetail, responses } from "./views.js";

const main = document.getElementById("main");
const nav = document.getElementById("nav");
let stopView = null; // the current view's cleanup (polling, live streams)

const ROUTES = [
  [/^#\/responses\/([^/?]+)$/, responseDetail],
  [/^#\/responses(\?.*)?$/, responses],
  [/^#\/conversations\/([^/?]+)$/, conversationDetail],
  [/^#\/conversations$/, conversations],
  [/^#\/jobs$/, jobs],
  [/^#\/prompts\/([^/?]+)$/, promptDetail],
  [/^#\/prompts$/, prompts],
  [/^#\/playground(\?.*)?$/, playground],
];

function login(message) {
  nav.hidden = true;
  const input = h("input", { type: "password", id: "key", name: "key", autocomplete: "off", placeholder: "API key",
    "data-testid": "key-input", required: true });
  const status = h("div", { class: "login-status" }, message ? errorBox(message) : null);
  const form = h("form", { class: "login card", "data-testid": "login" },
    h("h2", {}, "Sign in with an API key"),
    h("p", { class: "muted" }, "The key stays in this tab (sessionStorage) and is sent only as an Authorization header. You see the responses of this key only."),
    input, h("button", { type: "submit", "data-testid": "login-button" }, "Sign in"), status);
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const key = input.value.trim();
    input.value = "";
    try {
      await api("/v1/responses?limit=1", { key });
      setKey(key);
      if (!location.hash || location.hash === "#/login") location.hash = "#/responses";
      route();
    } catch (err) {
      clear(status, errorBox(err.status === 401 ? "That key was not accepted." : err));
    }
  });
  clear(main, form);
  input.focus();
}

async function route() {
  if (stopView) {
    stopView();
    stopView = null;
  }
  if (!getKey()) {
    login();
    return;
  }
  nav.hidden = false;
  const hash = location.hash || "#/responses";
  for (const a of nav.querySelectorAll("a[data-section]")) {
    a.classList.toggle("active", hash.startsWith(`#/${a.dataset.section}`));
  }
  for (const [pattern, view] of ROUTES) {
    const m = hash.match(pattern);
    if (m) {
      const root = h("div", { class: "view" });
      clear(main, root);
      try {
        stopView = (await view(root, decodeURIComponent(m[1] || ""), hash)) || null;
      } catch (err) {
        clear(root, errorBox(err));
      }
      return;
    }
  }
  location.hash = "#/responses";
}

document.getElementById("logout").addEventListener("click", () => {
  setKey(null);
  location.hash = "#/responses";
  login();
});
window.addEventListener("responsa:unauthorized", () => {
  setKey(null);
  login("The key was rejected; sign in again.");
});
window.addEventListener("hashchange", route);
route();
