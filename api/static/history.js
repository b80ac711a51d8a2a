// History page: batches (when there are any) and recent jobs with status and, for finished checks only, their verdict.
"use strict";

(() => {
  const { text, when, fillTable, onReady } = FTCN;

  // A cell holding a link: the moment something was submitted, to its page.
  function linkCell(moment, href) {
    const link = text("a", when(moment));
    link.href = href;
    const cell = document.createElement("td");
    cell.append(link);
    return cell;
  }

  function rowOf(job) {
    const row = document.createElement("tr");
    const first = linkCell(job.created_at, `/ui/jobs/${encodeURIComponent(job.id)}`);
    const verdict = job.status === "succeeded" && job.kind === "predict" ? job.result.verdict : "";
    const status = text("td", job.status, `status status-${job.status}`);
    const input = job.params.filename || job.params.video_url || job.params.dataset_id || job.params.s3_prefix || "";
    row.append(first, text("td", job.kind), status, text("td", verdict, verdict ? `verdict-${verdict}` : ""),
               text("td", input));
    return row;
  }

  function batchRow(batch) {
    const row = document.createElement("tr");
    row.append(linkCell(batch.created_at, `/ui/batches/${encodeURIComponent(batch.id)}`),
               text("td", batch.name || ""), text("td", batch.total), text("td", batch.status));
    return row;
  }

  onReady(async () => {
    await fillTable("history", "history-empty", "/jobs?limit=50", rowOf);
    await fillTable("batches", "batches-empty", "/batches", batchRow);
    FTCN.show(document.getElementById("batches-section"),
              document.querySelector("#batches tbody").children.length > 0);
  });
})();
