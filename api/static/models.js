// Models page: each model's validation AUC and threshold.
"use strict";

(() => {
  const { api, show, text, when, number, onReady } = FTCN;

  onReady(async () => {
    const body = document.querySelector("#models tbody");
    const models = (await api("/models")).items;
    body.replaceChildren();
    show(document.getElementById("models-empty"), !models.length);
    models.forEach((model) => {
      const metrics = model.metrics || {};
      const row = document.createElement("tr");
      row.append(text("td", model.name), text("td", number(metrics.clip && metrics.clip.auc)),
                 text("td", number(metrics.video && metrics.video.auc)), text("td", number(model.threshold, 4)),
                 text("td", model.default ? "yes" : ""), text("td", when(model.created_at)));
      body.append(row);
    });
  });
})();
