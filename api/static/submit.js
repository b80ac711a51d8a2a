// Submit page: a file (picked or dropped) or an https link, a model, an upload with progress.
"use strict";

(() => {
  const { api, headers, show, onReady } = FTCN;
  const maxBytes = Number(document.body.dataset.maxUploadMb) * 1024 * 1024;
  const form = document.getElementById("submit-form");
  const input = document.getElementById("video-input");
  const zone = document.getElementById("drop-zone");
  const chosen = document.getElementById("chosen-file");
  const urlInput = document.getElementById("url-input");
  const select = document.getElementById("model-select");
  const error = document.getElementById("submit-error");
  const bar = document.getElementById("upload-bar");
  const percent = document.getElementById("upload-percent");
  let file = null;

  function fail(message) {
    error.textContent = message;
    show(error, Boolean(message));
  }

  function choose(candidate) {
    fail("");
    file = null;
    if (!candidate) { chosen.textContent = "No file chosen."; return; }
    const megabytes = (candidate.size / 1024 / 1024).toFixed(1);
    if (candidate.size > maxBytes) {
      chosen.textContent = `${candidate.name} (${megabytes} MB)`;
      fail(`This file is ${megabytes} MB; the largest upload is ${document.body.dataset.maxUploadMb} MB.`);
      return;
    }
    file = candidate;
    chosen.textContent = `Chosen: ${candidate.name} (${megabytes} MB)`;
  }

  input.addEventListener("change", () => choose(input.files[0]));
  ["dragenter", "dragover"].forEach((name) => zone.addEventListener(name, (event) => {
    event.preventDefault();
    zone.classList.add("dragging");
  }));
  ["dragleave", "drop"].forEach((name) => zone.addEventListener(name, () => zone.classList.remove("dragging")));
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    choose(event.dataTransfer.files[0]);
  });

  function accepted(job) { window.location.assign(`/ui/jobs/${encodeURIComponent(job.id)}`); }

  function upload(body, method = "POST", url = "/jobs/predict", extraHeaders = null) {
    // XMLHttpRequest rather than fetch: it reports upload progress. A direct upload's PUT goes to a signed URL
    // (the signature is its credential: no token is sent there).
    return new Promise((resolve, reject) => {
      const request = new XMLHttpRequest();
      request.open(method, url);
      Object.entries(extraHeaders || headers()).forEach(([key, value]) => request.setRequestHeader(key, value));
      request.upload.addEventListener("progress", (event) => {
        if (!event.lengthComputable) return;
        const value = Math.round((100 * event.loaded) / event.total);
        bar.value = value;
        percent.textContent = `${value}%`;
      });
      request.addEventListener("load", () => {
        let answer = null;
        try { answer = JSON.parse(request.responseText); } catch (_) { /* not JSON */ }
        if (request.status >= 200 && request.status < 300) resolve(answer);
        else reject(new Error(answer && answer.detail ? answer.detail : `HTTP ${request.status}`));
      });
      request.addEventListener("error", () => reject(new Error("the upload failed (network error)")));
      request.send(body);
    });
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    fail("");
    const link = urlInput.value.trim();
    if (!file && !link) { fail("Choose a video file or give a link to one."); return; }
    if (!file && !link.startsWith("https://")) { fail("The link must start with https://"); return; }
    const button = document.getElementById("submit-button");
    button.disabled = true;
    try {
      const direct = Number(document.body.dataset.directUploadMb || 32);
      if (file && file.size > direct * 1024 * 1024) {
        // big file: straight to storage, then the job takes it by its upload id
        const target = await api("/uploads", { method: "POST", body: JSON.stringify({ filename: file.name }),
                                              headers: { "Content-Type": "application/json" } });
        show(document.getElementById("upload-progress"));
        await upload(file, target.method, target.url, target.headers);
        const payload = { upload_id: target.upload_id, ...(select.value ? { model_id: select.value } : {}) };
        accepted(await api("/jobs/predict", { method: "POST", body: JSON.stringify(payload),
                                               headers: { "Content-Type": "application/json" } }));
      } else if (file) {
        const data = new FormData();
        data.append("video", file, file.name);
        if (select.value) data.append("model_id", select.value);
        show(document.getElementById("upload-progress"));
        accepted(await upload(data));
      } else {
        const payload = { video_url: link, ...(select.value ? { model_id: select.value } : {}) };
        accepted(await api("/jobs/predict", { method: "POST", body: JSON.stringify(payload),
                                               headers: { "Content-Type": "application/json" } }));
      }
    } catch (problem) {
      fail(`Not submitted: ${problem.message}`);
      button.disabled = false;
    }
  });

  onReady(async () => {
    try {
      const models = (await api("/models")).items;
      const hint = document.getElementById("model-hint");
      while (select.options.length > 1) select.remove(1);
      models.forEach((model) => {
        const auc = model.metrics && model.metrics.video ? `, validation AUC ${Number(model.metrics.video.auc).toFixed(3)}` : "";
        const option = new Option(`${model.name}${model.default ? " (default)" : ""}${auc}`, model.id);
        select.add(option);
      });
      hint.textContent = models.length ? "" : "No model is registered yet: an operator must register or train one.";
    } catch (problem) {
      if (problem.status !== 401) fail(`Could not list the models: ${problem.message}`);
    }
  });
})();
