// The explorer: per sweep, controls that choose x, y, colour, panels, log axes and
// a filter, redrawing from the rows in the page (no server).
(function () {
  function option(select, value, label) {
    var o = document.createElement("option");
    o.value = value;
    o.textContent = label;
    select.appendChild(o);
  }
  function fill(select, values, none) {
    if (none) option(select, "", none);
    values.forEach(function (v) { option(select, v, v); });
  }
  // "sin, exp" (values) or "10..1000" (a range), per comma-separated part
  function matcher(text) {
    var parts = text.split(",").map(function (p) { return p.trim(); }).filter(Boolean);
    if (!parts.length) return null;
    return function (value) {
      return parts.some(function (part) {
        var range = part.split("..");
        if (range.length === 2 && typeof value === "number") {
          var lo = range[0] === "" ? -Infinity : Number(range[0]);
          var hi = range[1] === "" ? Infinity : Number(range[1]);
          return value >= lo && value <= hi;
        }
        return PSWEEP.text(value) === part || String(value) === part;
      });
    };
  }
  window.psweepExplorers = [];
  document.querySelectorAll(".explorer").forEach(function (box) {
    var offer = JSON.parse(box.querySelector("script").textContent);
    if (!offer) return;
    var section = box.closest("section.sweep");
    var get = function (role) { return box.querySelector("[data-role=" + role + "]"); };
    fill(get("x"), offer.params);
    fill(get("y"), offer.results.concat(["pass/fail"]));
    ["color", "facet", "facet2", "fparam"].forEach(function (role) {
      fill(get(role), offer.params, "(none)");
    });
    var start = offer.start;
    get("x").value = start.x;
    get("y").value = start.y;
    get("color").value = start.color || "";
    get("facet").value = (start.facets || [])[0] || "";
    get("facet2").value = (start.facets || [])[1] || "";
    var plot = box.querySelector(".explorer-plot");
    var status = box.querySelector(".explorer-status");
    function spec() {
      var facets = [get("facet").value, get("facet2").value].filter(Boolean);
      var y = get("y").value;
      var axis = function (role) { var v = get(role).value; return v === "auto" ? null : v === "log"; };
      if (y === "pass/fail") {
        var others = offer.params.filter(function (p) { return p !== get("x").value; });
        var second = get("color").value || others.find(function (p) { return facets.indexOf(p) < 0; });
        return {kind: "outcomes", x: get("x").value, y: second || null, facets: facets};
      }
      return {kind: "result", x: get("x").value, y: y, color: get("color").value || null,
              facets: facets, logx: axis("logx"), logy: axis("logy")};
    }
    function keep() {
      var data = section.psweepData, index = data.columns.indexOf(get("fparam").value);
      var match = index >= 0 ? matcher(get("fvalues").value) : null;
      var outcome = get("outcome").value, io = data.columns.indexOf("_outcome");
      if (!match && !outcome) return null;
      return function (row) {
        if (match && !match(row[index])) return false;
        if (outcome && io >= 0) {
          var kind = row[io] === "passed" ? "passed" : "failed";
          if (outcome !== kind) return false;
        }
        return true;
      };
    }
    function redraw() {
      var chosen = spec(), filter = keep(), data = section.psweepData;
      var shown = filter ? data.rows.filter(filter).length : data.rows.length;
      status.textContent = shown + " of " + data.rows.length + " psets";
      return window.psweepPlotly().then(function () { return PSWEEP.draw(plot, data, chosen, filter); })
        .then(function () { box.dataset.drawn = String(Number(box.dataset.drawn || 0) + 1); });
    }
    box.querySelectorAll("select, input").forEach(function (control) {
      control.addEventListener(control.tagName === "INPUT" ? "input" : "change", redraw);
    });
    window.psweepExplorers.push(redraw);
    function begin() {  // drawn when scrolled near, after the page has loaded
      var observer = new IntersectionObserver(function (entries) {
        if (entries.some(function (e) { return e.isIntersecting; })) { observer.disconnect(); redraw(); }
      }, {rootMargin: "200px"});
      observer.observe(box);
    }
    if (document.readyState === "complete") begin();
    else window.addEventListener("load", function () { setTimeout(begin, 0); });
  });
})();
