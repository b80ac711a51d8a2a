// Shared by every page: the access token (sessionStorage only), calls to the REST API, small formatters.
"use strict";

const FTCN = (() => {
  const TOKEN_KEY = "ftcn-token";
  const body = document.body;
  const needsToken = body.dataset.auth === "tokens";

  function token() { return sessionStorage.getItem(TOKEN_KEY); }

  function headers(extra = {}) {
    const value = token();
    return value ? { ...extra, Authorization: `Bearer ${value}` } : extra;
  }

  class ApiError extends Error {
    constructor(status, problem) {
      super(problem && problem.detail ? problem.detail : `HTTP ${status}`);
      this.status = status;
      this.problem = problem;
    }
  }

  async function problemOf(response) {
    try { return await response.json(); } catch (_) { return null; }
  }

  // GET or POST JSON on the API; a 401 forgets the token and asks for another one.
  async function api(path, options = {}) {
    const response = await fetch(path, { ...options, headers: headers(options.headers || {}) });
    if (response.status === 401 && needsToken) {
      sessionStorage.removeItem(TOKEN_KEY);
      askForToken("The token was refused (invalid or revoked). Paste a valid one.");
      throw new ApiError(401, await problemOf(response));
    }
    if (!response.ok) throw new ApiError(response.status, await problemOf(response));
    return response.status === 204 ? null : response.json();
  }

  function show(element, visible = true) { element.hidden = !visible; }

  function text(tag, content, className) {
    const element = document.createElement(tag);
    if (content !== undefined && content !== null) element.textContent = String(content);
    if (className) element.className = className;
    return element;
  }

  function when(iso) {
    if (!iso) return "";
    return new Date(iso).toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
  }

  function number(value, digits = 3) {
    return value === null || value === undefined ? "n/a" : Number(value).toFixed(digits);
  }

  function askForToken(message) {
    show(document.getElementById("content"), false);
    show(document.getElementById("token-panel"));
    show(document.getElementById("sign-out"), false);
    const error = document.getElementById("token-error");
    error.textContent = message || "";
    show(error, Boolean(message));
    document.getElementById("token-input").focus();
  }

  const started = [];
  function start() {
    show(document.getElementById("token-panel"), false);
    show(document.getElementById("content"));
    show(document.getElementById("sign-out"), needsToken);
    started.forEach((callback) => callback());
  }

  // A listing page's table: one row per item of an API listing (rowOf builds it), or its "empty" note.
  async function fillTable(tableId, emptyId, path, rowOf) {
    const items = (await api(path)).items;
    document.querySelector(`#${tableId} tbody`).replaceChildren(...items.map(rowOf));
    show(document.getElementById(emptyId), !items.length);
  }

  // Pages register what to do once a token is known (or right away when the service needs none).
  function onReady(callback) { started.push(callback); }

  document.getElementById("token-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const value = document.getElementById("token-input").value.trim();
    if (!value) return;
    sessionStorage.setItem(TOKEN_KEY, value);
    try {
      await api("/me");
      document.getElementById("token-input").value = "";
      start();
    } catch (error) {
      if (error.status !== 401) askForToken(`Could not check the token: ${error.message}`);
    }
  });

  document.getElementById("sign-out").addEventListener("click", () => {
    sessionStorage.removeItem(TOKEN_KEY);
    askForToken("");
  });

  document.addEventListener("DOMContentLoaded", () => {
    if (needsToken && !token()) askForToken("");
    else start();
  });

  return { api, ApiError, headers, show, text, when, number, fillTable, onReady };
})();
