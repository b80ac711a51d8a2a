// History page: recent jobs with status and, for finished checks only, their verdict.
"use strict";

(() => {
  const { api, show, text, when, onReady } = FTCN;

  onReady(async () => {
    const body = document.querySelector("#history tbody");
    const jobs = (await api("/jobs?limit=50")).items;
    body.replaceChildren();
    show(document.getElementById("history-empty"), !jobs.length);
    jobs.forEach((job) => {
      const row = document.createElement("tr");
      const link = text("a", when(job.created_at));
      link.href = `/ui/jobs/${encodeURIComponent(job.id)}`;
      const first = document.createElement("td");
      first.append(link);
      const verdict = job.status === "succeeded" && job.kind === "predict" ? job.result.verdict : "";
      const status = text("td", job.status, `status status-${job.status}`);
      const input = job.params.filename || job.params.video_url || job.params.dataset_id || job.params.s3_prefix || "";
      row.append(first, text("td", job.kind), status, text("td", verdict, verdict ? `verdict-${verdict}` : ""),
                 text("td", input));
      body.append(row);
    });
  });
})();
