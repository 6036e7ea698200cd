// A scenario's cells are built when its details are opened, from the JSON block (#cell-data), with textContent
// only: the texts come from results files and must never become markup.
(() => {
  const source = document.getElementById("cell-data");
  if (!source) return;
  const data = JSON.parse(source.textContent);
  const RECORD_HEAD = ["record", "kind", "dtype/shape", "min / max / mean", "value or sha256"];
  const make = (tag, text, css) => {
    const node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = String(text);
    if (css) node.className = css;
    return node;
  };
  const table = (head, rows) => {
    const t = make("table");
    const top = t.insertRow();
    head.forEach(h => top.append(make("th", h)));
    rows.forEach(r => { const tr = t.insertRow(); r.forEach(v => tr.append(make("td", v))); });
    return t;
  };
  const render = details => {
    const row = +details.dataset.row, box = details.querySelector(".cells");
    data.rows[row].forEach((code, column) => {
      if (code < 0) return;
      const status = data.statuses[code], detail = data.details[row][column];
      const seconds = detail && detail[0] !== null ? ` (${detail[0].toFixed(2)} s)` : "";
      box.append(make("h4", `${data.envs[column]}: ${status}${seconds}`));
      if (!detail) {
        box.append(make("p", "Details left out of this page: see this environment's results file.", "muted"));
        return;
      }
      const [, message, checks, records] = detail;
      if (message) box.append(make("pre", message));
      const checkRows = checks.map(i => data.checks[row][i]).map(c => [c[0], c[1] ? "✔" : "✘", c[2]]);
      if (checkRows.length) box.append(table(["check", "ok", "numbers"], checkRows));
      const recordRows = records.map(i => data.records[row][i]);
      if (recordRows.length) box.append(table(RECORD_HEAD, recordRows));
    });
  };
  document.querySelectorAll("details.cell-detail").forEach(details => {
    details.addEventListener("toggle", () => {
      if (details.open && !details.dataset.built) { details.dataset.built = "1"; render(details); }
    });
  });
  const openLinked = () => {
    const target = document.getElementById(decodeURIComponent(location.hash.slice(1)));
    if (target && target.tagName === "DETAILS") target.open = true;
  };
  window.addEventListener("hashchange", openLinked);
  openLinked();
})();
