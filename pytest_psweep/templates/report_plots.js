// The report's plots, drawn here from each sweep's rows in the page (report.py
// chooses the default plots; the explorer redraws with the reader's choices).
// A line joins only points that differ in x alone: every other varied parameter is
// the colour, a panel, or the points are drawn as markers (SPEC §9).
var PSWEEP = (function () {
  var PALETTE = ["#636efa", "#ef553b", "#00cc96", "#ab63fa", "#ffa15a", "#19d3f3",
                 "#ff6692", "#b6e880", "#ff97ff", "#fecb52"];
  var OUTCOME_COLORS = {passed: "#2ca02c", skipped: "#7f7f7f", failed: "#d62728",
                        crashed: "#9467bd"};
  var WORST = ["passed", "skipped", "failed", "crashed"];
  var MAX_PANELS = 24;
  var CATEGORIES = 40;  // a map's parameter with at most this many values: evenly spaced
  var HEATMAP = 2000;  // a pass/fail map of more cells: a heatmap

  function isNum(v) { return typeof v === "number"; }
  function order(a, b) {
    var an = isNum(a), bn = isNum(b);
    if (an && bn) return a - b;
    if (an !== bn) return an ? -1 : 1;
    return String(a) < String(b) ? -1 : String(a) > String(b) ? 1 : 0;
  }
  function orderKeys(a, b) {
    for (var i = 0; i < a.length; i++) { var c = order(a[i], b[i]); if (c) return c; }
    return 0;
  }
  function distinct(values) {
    var seen = new Map();
    values.forEach(function (v) { seen.set(v, true); });
    return Array.from(seen.keys()).sort(order);
  }
  function text(v) { return isNum(v) ? String(Number(v.toPrecision(6))) : String(v); }
  // Log when the positive values span three decades or more (zeros aside), none < 0;
  // or, over a decade or more, when they are evenly spaced on a log scale (32, 64, ...).
  function autoLog(values) {
    var lo = Infinity, hi = -Infinity;
    for (var i = 0; i < values.length; i++) {
      var v = values[i];
      if (!isNum(v) || v < 0) return false;
      if (v > 0) { if (v < lo) lo = v; if (v > hi) hi = v; }
    }
    if (!(hi > 0)) return false;
    return hi / lo >= 1000 || (hi / lo >= 10 && geometric(values));
  }
  function geometric(values) {
    var seen = distinct(values.filter(function (v) { return v > 0; }));
    if (seen.length < 4 || seen.length > 200) return false;
    var steps = [];
    for (var i = 1; i < seen.length; i++) steps.push(Math.log(seen[i] / seen[i - 1]));
    return Math.max.apply(null, steps) <= 1.5 * Math.min.apply(null, steps);
  }
  function wrap(line, width) {
    var out = [], current = "";
    line.split(" ").forEach(function (word) {
      if (current && (current + " " + word).length > width) { out.push(current); current = word; }
      else current = current ? current + " " + word : word;
    });
    out.push(current);
    return out;
  }
  function short(s, most) {
    most = most || 28;
    return s.length > most ? s.slice(0, most - 1) + "\u2026" : s;
  }
  function escape(s) {
    return String(s).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
  }
  function columns(data) {
    var index = {};
    data.columns.forEach(function (name, i) { index[name] = i; });
    return index;
  }
  // Rows in panels: [{key: [facet values], rows: [...]}], sorted, at most MAX_PANELS.
  function panels(rows, facets) {
    var groups = new Map();
    rows.forEach(function (row) {
      var key = facets.map(function (i) { return row[i]; });
      var id = JSON.stringify(key);
      if (!groups.has(id)) groups.set(id, {key: key, rows: []});
      groups.get(id).rows.push(row);
    });
    var found = Array.from(groups.values()).sort(function (a, b) { return orderKeys(a.key, b.key); });
    return {shown: found.slice(0, MAX_PANELS), total: found.length};
  }
  function axisName(kind, k) { return kind + (k ? k + 1 : ""); }
  function grid(layout, count, wide) {
    var ncol = Math.min(count, wide ? 1 : 3) || 1, nrow = Math.ceil(count / ncol) || 1;
    if (count > 1) {
      layout.grid = {rows: nrow, columns: ncol, pattern: "independent",
                     xgap: 0.12, ygap: nrow > 1 ? 0.3 : 0.2};
    }
    return {ncol: ncol, nrow: nrow};
  }
  var chars = 64;  // a title's line: set by draw from the plot's width
  function finish(layout, title, notes, shape, legendTitle) {
    // the title and its notes wrapped, left: the toolbar (top right) stays off them
    var lines = wrap(title, chars).map(escape);
    notes.forEach(function (note) {
      wrap(note, Math.round(chars * 1.3)).forEach(function (part) {
        lines.push('<span style="font-size:11px;color:#555">' + escape(part) + "</span>");
      });
    });
    layout.title = {text: lines.join("<br>"), x: 0.01, xanchor: "left", y: 1,
                    yanchor: "top", yref: "container", pad: {t: 12 + 12 * (lines.length - 1)},
                    font: {size: 14}};
    layout.height = 170 + 250 * shape.nrow + 16 * lines.length;
    layout.margin = {l: 60, r: 20, t: 36 + 17 * lines.length + (layout.grid ? 18 : 0), b: 50};
    if (legendTitle) layout.legend = {title: {text: escape(short(legendTitle))}};
    return layout;
  }
  function panelTitle(layout, k, facetNames, key) {
    if (!facetNames.length) return;
    layout.annotations.push({
      text: escape(short(facetNames.map(function (name, i) { return name + "=" + text(key[i]); }).join(", "), 40)),
      xref: axisName("x", k) + " domain", yref: axisName("y", k) + " domain", x: 0.5, y: 1,
      yanchor: "bottom", showarrow: false, font: {size: 12}});
  }
  function hover(row, names, index) {
    return names.map(function (name) { return name + "=" + text(row[index[name]]); }).join("<br>");
  }

  // A result against a parameter. spec: {x, y, color, facets, logx, logy}; keep: a
  // filter of rows; data: {columns, rows, params}.
  function resultFigure(data, spec, keep) {
    var index = columns(data), ix = index[spec.x], iy = index[spec.y];
    var ic = spec.color ? index[spec.color] : -1, io = index._outcome;
    var facets = (spec.facets || []).map(function (name) { return index[name]; });
    var others = data.params.filter(function (p) {
      return p !== spec.x && p !== spec.color && (spec.facets || []).indexOf(p) < 0;
    });
    var rows = data.rows.filter(function (r) {
      return isNum(r[iy]) && r[ix] !== "" && (!keep || keep(r));
    });
    var numericX = rows.every(function (r) { return isNum(r[ix]); });
    var logx = numericX && (spec.logx == null ? autoLog(rows.map(function (r) { return r[ix]; })) : spec.logx);
    var logy = spec.logy == null ? autoLog(rows.map(function (r) { return r[iy]; })) : spec.logy;
    var notes = [], hidden = rows.length;
    rows = rows.filter(function (r) { return !(logx && r[ix] <= 0) && !(logy && r[iy] <= 0); });
    hidden -= rows.length;
    if (hidden) notes.push(hidden + (hidden === 1 ? " pset" : " psets") + " with a value <= 0 not drawn on the log axis");
    var colors = ic >= 0 ? distinct(rows.map(function (r) { return r[ic]; })) : [null];
    var split = panels(rows, facets);
    if (split.total > split.shown.length) notes.push("the first " + split.shown.length + " of " + split.total + " panels");
    var traces = [], layout = {annotations: []}, legend = {}, pointsOnly = false;
    var names = data.params.concat([spec.y]);
    var xs = numericX ? null : distinct(rows.map(function (r) { return text(r[ix]); }));
    split.shown.forEach(function (panel, k) {
      colors.forEach(function (value, c) {
        var group = ic < 0 ? panel.rows : panel.rows.filter(function (r) { return r[ic] === value; });
        if (!group.length) return;
        var passed = group.filter(function (r) { return io === undefined || r[io] === "passed"; });
        var failed = group.filter(function (r) { return io !== undefined && r[io] !== "passed"; });
        var color = PALETTE[c % PALETTE.length], name = short(ic < 0 ? spec.y : text(value));
        passed.sort(function (a, b) { return order(a[ix], b[ix]); });
        var lines = numericX && passed.length > 1;
        for (var i = 1; lines && i < passed.length; i++) {
          if (passed[i][ix] === passed[i - 1][ix]) lines = false;
        }
        others.forEach(function (p) {
          var j = index[p];
          if (lines && passed.some(function (r) { return r[j] !== passed[0][j]; })) lines = false;
        });
        if (passed.length > 1 && !lines && numericX) pointsOnly = true;
        var axes = {xaxis: axisName("x", k), yaxis: axisName("y", k)};
        var many = rows.length > 5000;
        if (passed.length) {
          traces.push(Object.assign({
            type: many ? "scattergl" : "scatter", mode: lines ? "lines+markers" : "markers",
            name: name, legendgroup: name, showlegend: !legend[name],
            x: passed.map(function (r) { return numericX ? r[ix] : text(r[ix]); }),
            y: passed.map(function (r) { return r[iy]; }),
            text: passed.map(function (r) { return hover(r, names, index); }),
            hoverinfo: "text", marker: {color: color, size: many ? 4 : 7}, line: {color: color, width: 1.5}
          }, axes));
          legend[name] = true;
        }
        if (failed.length) {
          var failedName = ic < 0 ? "failed" : name + " (failed)";
          traces.push(Object.assign({
            type: "scatter", mode: "markers", name: failedName, legendgroup: failedName,
            showlegend: !legend[failedName],
            x: failed.map(function (r) { return numericX ? r[ix] : text(r[ix]); }),
            y: failed.map(function (r) { return r[iy]; }),
            text: failed.map(function (r) { return r[io] + "<br>" + hover(r, names, index); }),
            hoverinfo: "text", marker: {color: color, symbol: "x", size: 10, line: {width: 1}}
          }, axes));
          legend[failedName] = true;
        }
      });
    });
    var shape = grid(layout, split.shown.length, false);
    split.shown.forEach(function (panel, k) {
      var xa = {type: logx ? "log" : numericX ? "linear" : "category", automargin: true};
      if (!numericX) { xa.categoryorder = "array"; xa.categoryarray = xs; }
      var ya = {type: logy ? "log" : "linear", automargin: true, exponentformat: "e"};
      if (k) { xa.matches = "x"; ya.matches = "y"; }
      if (k >= split.shown.length - shape.ncol) xa.title = {text: escape(spec.x)};
      if (k % shape.ncol === 0) ya.title = {text: escape(spec.y)};
      else ya.showticklabels = false;
      layout[axisName("xaxis", k)] = xa;
      layout[axisName("yaxis", k)] = ya;
      panelTitle(layout, k, spec.facets || [], panel.key);
    });
    if (pointsOnly) {
      var varying = others.length ? others.join(", ") + (others.length > 1 ? " vary" : " varies")
        : "several psets share an x";
      notes.push("points, not lines: " + varying + " within a " + (ic >= 0 ? "colour" : "panel"));
    }
    if (!numericX) notes.push(spec.x + " is categorical: points, not lines");
    var per = numericX && !pointsOnly ? ", a line per " : ", a colour per ";
    var title = spec.y + " against " + spec.x + (spec.color ? per + spec.color : "") +
      ((spec.facets || []).length ? ", a panel per " + spec.facets.join(" and ") : "");
    return {data: traces, layout: finish(layout, title, notes, shape, spec.color)};
  }

  // Pass/fail over one or two parameters, a panel per value of the facets: the worst
  // outcome of each cell (several psets share a cell when other parameters vary).
  function outcomeFigure(data, spec, keep) {
    var index = columns(data), ix = index[spec.x], io = index._outcome;
    var iy = spec.y ? index[spec.y] : -1;
    var facets = (spec.facets || []).map(function (name) { return index[name]; });
    var rows = data.rows.filter(function (r) { return !keep || keep(r); });
    var outcome = function (r) { return io === undefined ? "passed" : String(r[io]); };
    function axis(i) {
      var values = distinct(rows.map(function (r) { return r[i]; }));
      var numeric = values.every(isNum);
      if (numeric && values.length > CATEGORIES) {
        return {spec: {type: autoLog(values) ? "log" : "linear"}, value: function (v) { return v; }};
      }
      return {spec: {type: "category", categoryorder: "array", categoryarray: values.map(text)},
              value: text};
    }
    var xaxis = axis(ix), yaxis = iy >= 0 ? axis(iy) : null;
    function worstOf(cell) {
      var worst = 0;
      WORST.forEach(function (kind, i) { if (cell.counts[kind]) worst = i; });
      return worst;
    }
    // many cells: one heatmap of the worst outcome (drawn much faster than markers)
    function heatmap(cells) {
      var xs = distinct(Array.from(cells.values(), function (c) { return c.x; }));
      var ys = distinct(Array.from(cells.values(), function (c) { return c.y; }));
      var xi = new Map(xs.map(function (v, i) { return [v, i]; }));
      var yi = new Map(ys.map(function (v, i) { return [v, i]; }));
      var z = ys.map(function () { return xs.map(function () { return null; }); });
      cells.forEach(function (cell) { z[yi.get(cell.y)][xi.get(cell.x)] = worstOf(cell); });
      var scale = [];
      WORST.forEach(function (kind, i) {
        scale.push([i / WORST.length, OUTCOME_COLORS[kind]], [(i + 1) / WORST.length, OUTCOME_COLORS[kind]]);
      });
      return {type: "heatmap", x: xs.map(xaxis.value), y: ys.map(yaxis.value), z: z,
              zmin: -0.5, zmax: WORST.length - 0.5, colorscale: scale, showscale: !shown.heatmap,
              colorbar: {tickvals: [0, 1, 2, 3], ticktext: WORST}, hoverongaps: false};
    }
    var split = panels(rows, facets), layout = {annotations: []}, traces = [], shown = {};
    var notes = [], shared = false;
    split.shown.forEach(function (panel, k) {
      var axes = {xaxis: axisName("x", k), yaxis: axisName("y", k)};
      if (iy < 0) {  // counts of each outcome per x value, stacked
        WORST.forEach(function (kind) {
          var counts = new Map();
          panel.rows.forEach(function (r) {
            if (outcome(r) !== kind) return;
            var x = xaxis.value(r[ix]);
            counts.set(x, (counts.get(x) || 0) + 1);
          });
          if (!counts.size) return;
          traces.push(Object.assign({type: "bar", name: kind, legendgroup: kind, showlegend: !shown[kind],
            x: Array.from(counts.keys()), y: Array.from(counts.values()),
            marker: {color: OUTCOME_COLORS[kind]}}, axes));
          shown[kind] = true;
        });
        return;
      }
      var cells = new Map();
      panel.rows.forEach(function (r) {
        var id = JSON.stringify([r[ix], r[iy]]);
        if (!cells.has(id)) cells.set(id, {x: r[ix], y: r[iy], counts: {}, n: 0});
        var cell = cells.get(id), kind = outcome(r);
        cell.counts[kind] = (cell.counts[kind] || 0) + 1;
        cell.n += 1;
        if (cell.n > 1) shared = true;
      });
      if (cells.size > HEATMAP) {
        traces.push(Object.assign(heatmap(cells), axes));
        shown.heatmap = true;
        return;
      }
      var byKind = {};
      cells.forEach(function (cell) {
        var worst = WORST[worstOf(cell)];
        (byKind[worst] = byKind[worst] || []).push(cell);
      });
      WORST.forEach(function (kind) {
        var list = byKind[kind];
        if (!list) return;
        traces.push(Object.assign({type: "scatter", mode: "markers", name: kind, legendgroup: kind,
          showlegend: !shown[kind],
          x: list.map(function (c) { return xaxis.value(c.x); }),
          y: list.map(function (c) { return yaxis.value(c.y); }),
          text: list.map(function (c) {
            return spec.x + "=" + text(c.x) + ", " + spec.y + "=" + text(c.y) + ": " +
              WORST.filter(function (w) { return c.counts[w]; }).map(function (w) {
                return c.counts[w] + " " + w; }).join(", ");
          }),
          hoverinfo: "text", marker: {color: OUTCOME_COLORS[kind], symbol: "square", size: 12}}, axes));
        shown[kind] = true;
      });
    });
    var shape = grid(layout, split.shown.length, false);
    split.shown.forEach(function (panel, k) {
      var xa = Object.assign({automargin: true}, xaxis.spec);
      var ya = yaxis ? Object.assign({automargin: true}, yaxis.spec) : {title: {text: "psets"}};
      if (k) { xa.matches = "x"; ya.matches = "y"; }
      if (k >= split.shown.length - shape.ncol) xa.title = {text: escape(spec.x)};
      if (yaxis && k % shape.ncol === 0) ya.title = {text: escape(spec.y)};
      else if (k % shape.ncol) ya.showticklabels = false;
      layout[axisName("xaxis", k)] = xa;
      layout[axisName("yaxis", k)] = ya;
      panelTitle(layout, k, spec.facets || [], panel.key);
    });
    if (iy < 0) layout.barmode = "stack";
    if (shared) notes.push("a cell's colour is the worst outcome of the psets in it (hover for counts)");
    if (split.total > split.shown.length) notes.push("the first " + split.shown.length + " of " + split.total + " panels");
    var title = "pass/fail over " + spec.x + (spec.y ? " and " + spec.y : "") +
      ((spec.facets || []).length ? ", a panel per " + spec.facets.join(" and ") : "");
    return {data: traces, layout: finish(layout, title, notes, shape, null)};
  }

  function figure(data, spec, keep) {
    return spec.kind === "outcomes" ? outcomeFigure(data, spec, keep) : resultFigure(data, spec, keep);
  }
  var CONFIG = {displaylogo: false, responsive: true,
                modeBarButtonsToRemove: ["select2d", "lasso2d", "autoScale2d"]};
  function draw(div, data, spec, keep) {
    // about 7.5 px a character at 14 px; the toolbar takes the right 220 px
    chars = Math.max(28, Math.floor(((div.clientWidth || 640) - 220) / 7.5));
    var fig = figure(data, spec, keep);
    return Plotly.react(div, fig.data, fig.layout, CONFIG);
  }
  return {figure: figure, draw: draw, autoLog: autoLog, order: order, distinct: distinct, text: text};
})();
