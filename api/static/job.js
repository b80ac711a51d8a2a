// Job page: follows the job (polling /jobs/<id>) and, only once it has succeeded, shows what it found.
"use strict";

(() => {
  const { api, show, text, when, number, onReady } = FTCN;
  const jobId = document.body.dataset.jobId;
  const COLORS = ["#d7263d", "#1b998b", "#2e86ab", "#f49d37", "#7b2cbf", "#3d5a80", "#8a5a44", "#2a9d8f"];
  const STAGES = { faces: "finding and following faces", clips: "scoring face clips", annotate: "drawing the annotated video",
                   preprocess: "preparing face clips", done: "done" };
  const $ = (id) => document.getElementById(id);
  let shown = false;

  function statusLine(job) {
    const what = { predict: "Video check", preprocess: "Dataset preparation", train: "Training" }[job.kind] || job.kind;
    $("job-title").textContent = `${what} · ${when(job.created_at)}`;
    if (job.status === "queued") return "Waiting for a worker…";
    if (job.status === "running") {
      const stage = STAGES[job.stage] || job.stage || "starting";
      return `Running: ${stage} (${Math.round(job.progress)}%)`;
    }
    if (job.erased_at) {
      if (job.erased_reason === "source-erased") {
        return `Deleted ${when(job.erased_at)}: this answer came from an earlier check of the same video, ` +
               "which was deleted with every file made from it.";
      }
      const by = job.erased_reason === "retention" ? "by the retention policy" : "on request";
      return `Deleted ${by} ${when(job.erased_at)}: the video and every file made from it were erased.`;
    }
    if (job.status === "succeeded" && job.reused_from) {
      return `Answered at once ${when(job.finished_at)}: the same video was checked before with the same ` +
             "model and options, and this is that check's result.";
    }
    if (job.status === "succeeded") return `Finished ${when(job.finished_at)}.`;
    if (job.status === "failed") return `Failed ${when(job.finished_at)}.`;
    return "Canceled.";
  }

  async function poll() {
    let job;
    try {
      job = await api(`/jobs/${encodeURIComponent(jobId)}`);
    } catch (problem) {
      if (problem.status === 404) { $("job-status").textContent = "There is no such job (or it is not yours)."; return; }
      if (problem.status !== 401) setTimeout(poll, 3000);
      return;
    }
    $("job-status").textContent = statusLine(job);
    $("job-progress").value = job.status === "succeeded" ? 100 : job.progress;
    if (job.status === "failed" && job.error) {
      $("job-error").textContent = `Reason: ${job.error.message} (${job.error.code})`;
      show($("job-error"));
    }
    show($("erase-card"), !job.erased_at);
    if (job.status === "succeeded" && !shown) {  // a verdict is never shown for a job that has not succeeded
      shown = true;
      if (job.kind === "predict") await showPrediction(job);
      else showTraining(job);
    }
    if (job.status === "queued" || job.status === "running") setTimeout(poll, 1000);
  }

  function verdictWords(result) {
    const threshold = number(result.threshold);
    if (result.verdict === "NO_FACE") {
      const reason = result.no_face_reason ? ` (${result.no_face_reason})` : "";
      return `The model could not judge this video: no face was seen long and clearly enough${reason}.`;
    }
    const share = result.coverage ? result.coverage.share : null;
    const covered = share === null || share === undefined ? "" :
      ` Faces were judged in ${Math.round(share * 100)} % of the video's frames` +
      (share < 0.5 ? ": much of it was not seen, so the verdict speaks only for those parts." : ".");
    if (result.verdict === "INCONCLUSIVE") {
      const reasons = (result.inconclusive_reasons || []).join("; ");
      if (result.score === null || result.score === undefined) {
        return `The model could not judge this video although a face was seen: ${reasons}. Look at it ` +
               `yourself, or find a better copy.`;
      }
      return `The model cannot tell whether this video is forged (score ${number(result.score)}, threshold ` +
             `${threshold}): ${reasons}. Look at it yourself, or find a better copy.` + covered;
    }
    if (result.verdict === "FAKE") {
      return `The model judges this video FORGED: its most suspicious face scored ${number(result.score)}, above ` +
             `the threshold of ${threshold}. A verdict is the model's estimate, not proof.` + covered;
    }
    return `The model judges this video REAL: no face scored above the threshold of ${threshold} (the highest ` +
           `score was ${number(result.score)}). A verdict is the model's estimate, not proof.` + covered;
  }

  async function erase() {
    if (!window.confirm("Delete this video and everything made from it? This cannot be undone.")) return;
    $("erase-button").disabled = true;
    try {
      await api(`/jobs/${encodeURIComponent(jobId)}`, { method: "DELETE" });
    } catch (problem) {
      $("erase-error").textContent = `Could not delete: ${problem.message || problem.status}`;
      show($("erase-error"));
      $("erase-button").disabled = false;
      return;
    }
    show($("media"), false);
    show($("training"), false);
    const job = await api(`/jobs/${encodeURIComponent(jobId)}`);
    $("job-status").textContent = statusLine(job);
    show($("erase-card"), false);
  }

  async function showPrediction(job) {
    const summary = job.result;
    $("verdict-word").textContent = summary.verdict === "NO_FACE" ? "NO FACE" : summary.verdict;
    $("verdict").dataset.verdict = summary.verdict;
    $("verdict-words").textContent = verdictWords(summary);
    $("model-card").textContent = summary.model_card_line || "";  // which model, trained on what (its card)
    show($("verdict"));
    if (job.erased_at) return;  // the annotated video and the result document are gone
    const video = $("annotated");
    video.src = job.links.annotated_video;
    show($("media"));
    const result = await api(`/jobs/${encodeURIComponent(jobId)}/result`);
    drawChart(result, video);
    listFaces(result, job.links, video);
    const downloads = $("downloads");
    downloads.replaceChildren(text("span", "Download: "));
    [["result", "result.json"], ["annotated_video", "annotated video (MP4)"], ["timeline", "timeline chart (PNG)"]]
      .filter(([name]) => job.links[name])
      .forEach(([name, label], index) => {
        if (index) downloads.append(" · ");
        const link = text("a", label);
        link.href = job.links[name];
        link.setAttribute("download", "");
        downloads.append(link);
      });
  }

  function svg(tag, attributes = {}) {
    const element = document.createElementNS("http://www.w3.org/2000/svg", tag);
    Object.entries(attributes).forEach(([key, value]) => element.setAttribute(key, String(value)));
    return element;
  }

  function drawChart(result, video) {
    const fps = result.input.fps || 25;
    const duration = Math.max(result.input.frames_read / fps, 1 / fps);
    const threshold = result.threshold;
    const logit = threshold < 0.05 || threshold > 0.95;  // the official model's threshold is 0.0026
    const clamp = (p) => Math.min(1 - 1e-5, Math.max(1e-5, p));
    const toY = logit ? (p) => (Math.log(clamp(p) / (1 - clamp(p))) + 11.5) / 23 : (p) => p;
    const W = 640, H = 220, L = 48, R = 26, T = 10, B = 30;
    const x = (t) => L + ((W - L - R) * t) / duration;
    const y = (p) => T + (H - T - B) * (1 - toY(p));
    const chart = svg("svg", { viewBox: `0 0 ${W} ${H}`, class: "timeline", "aria-hidden": "true" });
    chart.append(svg("rect", { x: L, y: T, width: W - L - R, height: H - T - B, class: "plot" }));
    const ticks = logit ? [1e-4, 0.01, 0.5, 0.99] : [0, 0.25, 0.5, 0.75, 1];
    ticks.forEach((p) => {
      chart.append(svg("line", { x1: L, x2: W - R, y1: y(p), y2: y(p), class: "grid" }));
      const label = svg("text", { x: L - 6, y: y(p) + 4, "text-anchor": "end", class: "tick" });
      label.textContent = String(p);
      chart.append(label);
    });
    for (let i = 0; i <= 4; i += 1) {
      const t = (duration * i) / 4;
      const label = svg("text", { x: x(t), y: H - 10, "text-anchor": "middle", class: "tick" });
      label.textContent = `${t.toFixed(1)} s`;
      chart.append(label);
    }
    chart.append(svg("line", { x1: L, x2: W - R, y1: y(threshold), y2: y(threshold), class: "threshold" }));
    result.tracks.forEach((track, index) => {
      const series = svg("g", { class: "series", "data-face": track.id, stroke: COLORS[index % COLORS.length] });
      let points = [];
      const flush = () => {
        if (points.length) series.append(svg("polyline", { points: points.join(" "), fill: "none" }));
        points = [];
      };
      track.frames.forEach((frame, k) => {
        const score = track.timeline[k];
        if (score === null || score === undefined) { flush(); return; }
        points.push(`${x(frame / fps).toFixed(1)},${y(score).toFixed(1)}`);
      });
      flush();
      chart.append(series);
    });
    const cursor = svg("line", { x1: L, x2: L, y1: T, y2: H - B, class: "cursor" });
    chart.append(cursor);
    video.addEventListener("timeupdate", () => {
      cursor.setAttribute("x1", x(video.currentTime));
      cursor.setAttribute("x2", x(video.currentTime));
    });
    const holder = $("chart");
    holder.replaceChildren(chart);
    holder.setAttribute("aria-label", `Forgery score over time for ${result.tracks.length} face(s), threshold ${number(threshold)}`);
    holder.addEventListener("click", (event) => {
      const box = chart.getBoundingClientRect();
      const fraction = ((event.clientX - box.left) / box.width * W - L) / (W - L - R);
      video.currentTime = Math.min(duration, Math.max(0, fraction * duration));
    });
    holder.addEventListener("keydown", (event) => {
      const step = { ArrowLeft: -1, ArrowRight: 1 }[event.key];
      if (!step) return;
      event.preventDefault();
      video.currentTime = Math.min(duration, Math.max(0, video.currentTime + step));
    });
  }

  function listFaces(result, links, video) {
    const fps = result.input.fps || 25;
    const list = $("faces");
    list.replaceChildren();
    if (!result.tracks.length) list.append(text("li", "No face was found."));
    result.tracks.forEach((track, index) => {
      const item = text("li", null, "face");
      const swatch = text("span", null, "swatch");
      swatch.style.background = COLORS[index % COLORS.length];
      item.append(swatch);
      if (links[`face_${track.id}`]) {
        const image = text("img");
        image.src = links[`face_${track.id}`];
        image.alt = `Face ${track.id}`;
        image.width = 72;
        image.height = 72;
        item.append(image);
      }
      const start = track.start_frame / fps, end = track.end_frame / fps;
      const when = `${start.toFixed(1)}–${end.toFixed(1)} s`;
      item.append(text("span", track.score === null || track.score === undefined
        ? `Face ${track.id}: not judged, ${track.unjudged_reason || "no clip"} (${when})`
        : `Face ${track.id}: ${track.verdict}, score ${number(track.score)} (${when}, ${track.clips} clip(s))`));
      const jump = text("button", "Show in video", "link");
      jump.type = "button";
      jump.addEventListener("click", () => { video.currentTime = start; video.focus(); });
      item.append(jump);
      list.append(item);
    });
  }

  function showTraining(job) {
    const result = job.result || {};
    const metrics = $("training-metrics");
    const rows = [];
    if (job.kind === "train") {
      const best = result.metrics || {};
      rows.push(["Model", result.model_id], ["Validation AUC (clips)", number(best.clip && best.clip.auc)],
                ["Validation AUC (videos)", number(best.video && best.video.auc)],
                ["Threshold", number(result.threshold)], ["Epochs", result.epochs]);
    } else {
      rows.push(["Dataset", result.dataset_id], ["Videos", result.videos], ["Face clips", result.clips],
                ["Videos that failed", result.failed]);
    }
    metrics.replaceChildren(...rows.flatMap(([term, value]) => [text("dt", term), text("dd", value)]));
    const plots = $("training-plots");
    plots.replaceChildren();
    [["loss_plot", "Loss per epoch"], ["auc_plot", "Validation AUC per epoch"]].forEach(([name, label]) => {
      if (!job.links[name]) return;
      const figure = text("figure");
      const image = text("img");
      image.src = job.links[name];
      image.alt = label;
      figure.append(image, text("figcaption", label));
      plots.append(figure);
    });
    show($("training"));
  }

  onReady(() => {
    $("erase-button").addEventListener("click", erase);
    poll();
  });
})();
