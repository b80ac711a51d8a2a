// Models page: each model's validation AUC and threshold.
"use strict";

(() => {
  const { text, when, number, fillTable, onReady } = FTCN;

  function rowOf(model) {
    const metrics = model.metrics || {};
    const row = document.createElement("tr");
    row.append(text("td", model.name), text("td", number(metrics.clip && metrics.clip.auc)),
               text("td", number(metrics.video && metrics.video.auc)), text("td", number(model.threshold, 4)),
               text("td", model.default ? "yes" : ""), text("td", when(model.created_at)));
    return row;
  }

  onReady(() => fillTable("models", "models-empty", "/models", rowOf));
})();
