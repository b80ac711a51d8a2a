// Batch page: counts by status, each video's verdict (linking to its job), and with labels the report.
// Refreshes until the batch is finished.
"use strict";

(() => {
  const { api, text, number, show, onReady } = FTCN;
  const batchId = document.body.dataset.batchId;

  function rowOf(job) {
    const row = document.createElement("tr");
    const link = text("a", job.item || job.id);
    link.href = `/ui/jobs/${encodeURIComponent(job.id)}`;
    const first = document.createElement("td");
    first.append(link);
    const verdict = job.verdict || (job.error ? job.error.code : "");
    row.append(first, text("td", job.label || ""), text("td", job.status, `status status-${job.status}`),
               text("td", verdict, job.verdict ? `verdict-${job.verdict}` : ""),
               text("td", job.score === null || job.score === undefined ? "" : number(job.score)));
    return row;
  }

  function showReport(report) {
    show(document.getElementById("batch-report"), Boolean(report));
    if (!report) return;
    const figures = [["AUC", number(report.auc)], ["Accuracy", number(report.accuracy)],
                     ["False-positive rate", number(report.false_positive_rate)],
                     ["Videos (real / fake)", `${report.videos} (${report.real} / ${report.fake})`]];
    document.getElementById("report-figures").replaceChildren(
      ...figures.flatMap(([name, value]) => [text("dt", name), text("dd", value)]));
  }

  async function refresh() {
    let batch;
    try {
      batch = await api(`/batches/${encodeURIComponent(batchId)}`);
    } catch (error) {
      document.getElementById("batch-status").textContent = `Could not load the batch: ${error.message}`;
      return;
    }
    document.getElementById("batch-title").textContent = batch.name ? `Batch: ${batch.name}` : "Batch";
    const counts = Object.entries(batch.counts).filter(([, n]) => n).map(([s, n]) => `${n} ${s}`).join(", ");
    document.getElementById("batch-status").textContent =
      `${batch.status === "finished" ? "Finished" : "Running"}: ${batch.total} videos (${counts})`;
    document.querySelector("#batch-jobs tbody").replaceChildren(...batch.jobs.map(rowOf));
    showReport(batch.report);
    if (batch.status !== "finished") setTimeout(refresh, 3000);
  }

  onReady(refresh);
})();
