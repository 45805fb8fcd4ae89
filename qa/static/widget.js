/* helpdesk-qa widget: one tag embeds it.
 *   <script src="https://…/widget.js" data-api="https://…" data-lang="de" data-country="DE" async></script>
 * Everything lives in a Shadow DOM, so page CSS and widget CSS cannot touch each other.
 * Article text is rendered with textContent only: nothing in an article can run script.
 * Highlights come from the service as character offsets and become <mark> elements around
 * text nodes; suggestions (/v1/suggest) list below the results, in keyboard order.
 * window.HelpdeskQA.open({category, label}) opens it on a category (the portal's tiles).
 * data-mode="library" skips the UI and only exposes window.HelpdeskQA (used by /agent).
 */
(function () {
  "use strict";

  var script = document.currentScript || document.querySelector('script[src*="widget.js"]');
  var data = (script && script.dataset) || {};
  var api = (data.api || (script ? new URL(script.src, location.href).origin : location.origin)).replace(/\/$/, "");

  var TEXT = {
    en: { help: "Help", title: "How can we help?", placeholder: "Describe your question…", close: "Close",
      results: "Results", onlyIn: "Only available in", full: "Open the full article", none: "No matching answer found.",
      support: "How to contact support", include: "Contact support and mention your member ID in your request.", error: "The help service is not reachable. Please try again.",
      suggestions: "Suggestions", popular: "Frequently asked", onlyFor: "Only for members in", removeFilter: "Remove filter",
      searching: "Searching…", countries: "Applies to", all: "all countries", searchedAs: "Results for",
      helped: "Did this answer help?", yes: "Yes", no: "No", thanks: "Thank you for your feedback!" },
    de: { help: "Hilfe", title: "Wie können wir helfen?", placeholder: "Beschreiben Sie Ihre Frage…", close: "Schließen",
      results: "Ergebnisse", onlyIn: "Nur verfügbar auf", full: "Ganzen Artikel öffnen", none: "Keine passende Antwort gefunden.",
      support: "So erreichen Sie den Support", include: "Kontaktieren Sie den Support und nennen Sie dort Ihre Mitgliedsnummer.", error: "Der Hilfe-Dienst ist nicht erreichbar. Bitte versuchen Sie es erneut.",
      suggestions: "Vorschläge", popular: "Häufig gefragt", onlyFor: "Nur für Mitglieder in", removeFilter: "Filter entfernen",
      searching: "Suche…", countries: "Gilt für", all: "alle Länder", searchedAs: "Ergebnisse für",
      helped: "Hat diese Antwort geholfen?", yes: "Ja", no: "Nein", thanks: "Danke für Ihr Feedback!" },
    ru: { help: "Помощь", title: "Чем помочь?", placeholder: "Опишите ваш вопрос…", close: "Закрыть",
      results: "Результаты", onlyIn: "Доступно только на языке:", full: "Открыть статью полностью", none: "Подходящий ответ не найден.",
      support: "Как связаться с поддержкой", include: "Напишите в поддержку и укажите в обращении свой номер участника (ID).", error: "Сервис помощи недоступен. Попробуйте ещё раз.",
      suggestions: "Подсказки", popular: "Часто спрашивают", onlyFor: "Только для участников из", removeFilter: "Убрать фильтр",
      searching: "Ищем…", countries: "Действует для", all: "всех стран", searchedAs: "Результаты по запросу",
      helped: "Помог ли этот ответ?", yes: "Да", no: "Нет", thanks: "Спасибо за отзыв!" }
  };
  var LANG_NAMES = {
    en: { ru: "Russian", de: "German", en: "English" },
    de: { ru: "Russisch", de: "Deutsch", en: "Englisch" },
    ru: { ru: "русском", de: "немецком", en: "английском" }
  };

  function pickLang(value) {
    var l = String(value || "").toLowerCase().slice(0, 2);
    return TEXT[l] ? l : "en";
  }

  // -- safe rendering: DOM nodes and textContent only ------------------------------------
  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (k === "text") node.textContent = attrs[k];
      else if (k === "className") node.className = attrs[k];
      else node.setAttribute(k, attrs[k]);
    });
    (children || []).forEach(function (c) { if (c) node.appendChild(c); });
    return node;
  }

  function safeUrl(url) {
    try {
      var u = new URL(url, location.href);
      return u.protocol === "https:" || u.protocol === "http:" ? u.href : null;
    } catch (e) { return null; }
  }

  // -- Markdown: article text becomes DOM nodes (never HTML) or plain text ----------------
  // Inline: \escapes, `code`, **bold**, [text](url); a stray ` or ** is dropped. Anything
  // else, including HTML tags, stays literal text.
  var INLINE = /\\([!-\/:-@\[-`{-~])|`([^`]+)`|\*\*(.+?)\*\*|\[([^\]]+)\]\(([^)\s]+)\)|`+|\*\*+/;

  function spans(text, each) {
    var re = new RegExp(INLINE.source, "g"), last = 0, m;
    while ((m = re.exec(text))) {
      if (m.index > last) each("text", text.slice(last, m.index));
      if (m[1]) each("text", m[1]);
      else if (m[2]) each("code", m[2]);
      else if (m[3]) each("strong", m[3]);
      else if (m[4]) each("link", m[4], m[5]);
      last = re.lastIndex;
    }
    if (last < text.length) each("text", text.slice(last));
  }

  function inline(text, parent) {
    spans(text, function (kind, s, url) {
      if (kind === "text") parent.appendChild(document.createTextNode(s));
      else if (kind === "code") parent.appendChild(el("code", { text: s }));
      else if (kind === "strong") parent.appendChild(inline(s, el("strong")));
      else {
        var href = safeUrl(url);
        parent.appendChild(href ? el("a", { href: href, target: "_blank", rel: "noopener", text: plainInline(s) })
                                : document.createTextNode(plainInline(s)));
      }
    });
    return parent;
  }

  function plainInline(text) {
    var out = "";
    spans(text, function (kind, s) { out += kind === "strong" ? plainInline(s) : s; });
    return out;
  }

  // Blocks: paragraphs, headings, lists (nested by indentation), tables, fenced code.
  var ITEM = /^(\s*)(\d{1,9}[.)]|[-*+])\s+(.*)$/, RULE = /^\s*\|?\s*:?-+:?\s*(\|\s*:?-+:?\s*)*\|?\s*$/;
  var FENCE = /^\s*(```|~~~)/, ROW = /^\s{0,3}\|/;

  function cells(line) { // "| a | b \| c |" -> ["a", "b \| c"]; inline() resolves the escape
    var out = [], cur = "", s = line.trim().replace(/^\|/, "");
    for (var i = 0; i < s.length; i++) {
      if (s[i] === "\\" && s[i + 1] === "|") { cur += "\\|"; i++; }
      else if (s[i] === "|") { out.push(cur.trim()); cur = ""; }
      else cur += s[i];
    }
    if (cur.trim()) out.push(cur.trim());
    return out;
  }

  function blocks(md) {
    var lines = String(md || "").replace(/\r\n?/g, "\n").split("\n"), out = [], i = 0, m;
    while (i < lines.length) {
      var line = lines[i];
      if (FENCE.test(line)) {
        var code = [];
        while (++i < lines.length && !FENCE.test(lines[i])) code.push(lines[i]);
        out.push({ type: "code", text: code.join("\n") });
      } else if (ROW.test(line) && i + 1 < lines.length && lines[i + 1].indexOf("|") >= 0 && RULE.test(lines[i + 1])) {
        var t = { type: "table", head: cells(line), rows: [], align: cells(lines[i + 1]).map(function (c) {
          return /^:-+:$/.test(c) ? "center" : /-:$/.test(c) ? "right" : "";
        }) };
        for (i += 2; i < lines.length && ROW.test(lines[i]); i++) t.rows.push(cells(lines[i]));
        out.push(t);
        continue;
      } else if ((m = ITEM.exec(line))) {
        out.push({ type: "item", indent: m[1].length, content: m[1].length + m[2].length + 1,
          ordered: /\d/.test(m[2]), start: parseInt(m[2], 10), text: m[3] });
      } else if ((m = /^\s{0,3}#{1,6}\s+(.*?)[\s#]*$/.exec(line))) {
        out.push({ type: "heading", text: m[1] });
      } else if (!line.trim()) {
        out.push({ type: "blank" });
      } else {
        out.push({ type: "text", indent: /^\s*/.exec(line)[0].length, text: line.trim().replace(/^>\s?/, "") });
      }
      i++;
    }
    return out;
  }

  function table(b) {
    function row(values, tag) {
      return el("tr", {}, b.head.map(function (_, i) {
        var cell = inline(values[i] || "", el(tag, tag === "th" ? { scope: "col" } : {}));
        if (b.align[i]) cell.style.textAlign = b.align[i];
        return cell;
      }));
    }
    return el("div", { className: "table" }, [el("table", {}, [
      el("thead", {}, [row(b.head, "th")]),
      el("tbody", {}, b.rows.map(function (r) { return row(r, "td"); }))
    ])]);
  }

  function renderMarkdown(md) {
    var root = el("div", { className: "md" }), stack = [], para = null, gap = false;
    function top() { return stack[stack.length - 1]; }
    blocks(md).forEach(function (b) {
      if (b.type === "item") {
        while (stack.length && b.indent < top().indent) stack.pop();
        var tag = b.ordered ? "ol" : "ul", cur = top(), parent = root;
        if (cur && b.indent >= cur.content) parent = cur.list.lastChild; // nested in the item above
        else if (cur && cur.list.tagName.toLowerCase() === tag) parent = null; // the same list goes on
        else if (cur) { parent = cur.list.parentNode; stack.pop(); } // same level, other kind of list
        if (parent) {
          var list = el(tag, b.ordered && b.start !== 1 ? { start: String(b.start) } : {});
          parent.appendChild(list);
          stack.push({ list: list, indent: b.indent, content: b.content });
        }
        para = inline(b.text, el("li"));
        top().list.appendChild(para);
      } else if (b.type === "text" && para) {
        inline(" " + b.text, para); // a continuation line
      } else if (b.type === "text") {
        var inItem = gap && stack.length && b.indent > top().indent;
        if (!inItem) stack = [];
        para = inline(b.text, el("p"));
        (inItem ? top().list.lastChild : root).appendChild(para);
      } else if (b.type === "blank") {
        para = null;
      } else {
        stack = [];
        para = null;
        root.appendChild(b.type === "table" ? table(b) : b.type === "code" ? el("pre", { text: b.text })
                                                     : inline(b.text, el("h4")));
      }
      gap = b.type === "blank";
    });
    return root;
  }

  // Plain text for snippets and copied answers: no Markdown syntax left. A table reads
  // "cell – cell; cell – cell." (its body rows; the header is for the expanded view).
  function plain(md) {
    return blocks(md).map(function (b) {
      if (b.type === "blank") return "";
      if (b.type !== "table") return plainInline(b.text);
      return (b.rows.length ? b.rows : [b.head]).map(function (r) {
        return r.map(plainInline).filter(Boolean).join(" – ");
      }).join("; ") + ".";
    }).join(" ").replace(/\s+/g, " ").trim();
  }

  // The first ~160 characters of plain text, cut between words.
  function snippet(md) {
    var text = plain(md);
    if (text.length <= 160) return text;
    var cut = text.lastIndexOf(" ", 160);
    return text.slice(0, cut > 100 ? cut : 160).replace(/[\s,;:–-]+$/, "") + "…";
  }

  // -- highlights: character offsets from the service become <mark> elements ---------
  // Text nodes and <mark> elements only: the question's and the article's characters
  // stay text whatever they contain.
  function marked(text, ranges, parent) {
    var last = 0;
    (ranges || []).forEach(function (r) {
      var a = Math.max(last, r[0] | 0), b = Math.min(text.length, r[1] | 0);
      if (b <= a) return;
      if (a > last) parent.appendChild(document.createTextNode(text.slice(last, a)));
      parent.appendChild(el("mark", { text: text.slice(a, b) }));
      last = b;
    });
    if (last < text.length) parent.appendChild(document.createTextNode(text.slice(last)));
    return parent;
  }

  function hl(r) { return r.highlights || {}; }

  // The element of a rendered section that holds its best-matching step or sentence.
  function bestElement(root, r) {
    var h = hl(r);
    if (h.best_step != null) {
      var steps = root.querySelectorAll("ol > li");
      if (steps[h.best_step]) return steps[h.best_step];
    }
    var probe = String(h.best_text || "").slice(0, 40);
    if (!probe) return null;
    return Array.prototype.filter.call(root.querySelectorAll("li, p, td, h4"), function (n) {
      return n.textContent.indexOf(probe) >= 0;
    }).pop() || null;
  }

  function markBest(root, r) {
    var best = bestElement(root, r);
    if (best) best.classList.add("best");
    return best;
  }

  // A random id per search session, so the service stores the prefixes typed on the way
  // to one question as one question. Not linked to the member.
  function newSession() {
    var b = new Uint8Array(8);
    (window.crypto || window.msCrypto).getRandomValues(b);
    return Array.prototype.map.call(b, function (x) { return (x < 16 ? "0" : "") + x.toString(16); }).join("");
  }

  // By POST: a question in a URL would end up in every proxy's and server's access log.
  function ask(params, signal) {
    var body = {};
    Object.keys(params).filter(function (k) { return params[k]; }).forEach(function (k) {
      body[k === "q" ? "question" : k] = k === "limit" ? parseInt(params[k], 10) : params[k];
    });
    return fetch(api + "/v1/ask", { method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body), signal: signal }).then(function (r) {
      return r.json().then(function (body) {
        if (!r.ok) throw new Error(body && body.detail ? body.detail : "HTTP " + r.status);
        return body;
      });
    });
  }

  // By POST like ask(): what the member has typed is a question too, and URLs get logged.
  function suggest(params, signal) {
    var body = {};
    Object.keys(params).filter(function (k) { return params[k]; }).forEach(function (k) {
      body[k] = k === "limit" ? parseInt(params[k], 10) : params[k];
    });
    return fetch(api + "/v1/suggest", { method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body), signal: signal }).then(function (r) {
      if (!r.ok) throw new Error("HTTP " + r.status);
      return r.json();
    });
  }

  window.HelpdeskQA = { renderMarkdown: renderMarkdown, plain: plain, ask: ask, safeUrl: safeUrl, api: api, newSession: newSession,
    marked: marked, markBest: markBest, suggest: suggest };
  if (data.mode === "library") return;

  // -- the widget ------------------------------------------------------------------------
  var lang = pickLang(data.lang || document.documentElement.lang || navigator.language);
  var country = (data.country || "").toUpperCase();
  var T = TEXT[lang];

  var CSS = [
    ":host{all:initial}",
    "*{box-sizing:border-box;font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif}",
    ".launcher{position:fixed;right:16px;bottom:16px;z-index:2147483000;background:#0b5cad;color:#fff;border:0;border-radius:24px;padding:12px 20px;font-size:15px;font-weight:600;cursor:pointer;box-shadow:0 4px 14px rgba(0,0,0,.25)}",
    ".launcher:focus-visible,button:focus-visible,a:focus-visible,input:focus-visible{outline:3px solid #f5a623;outline-offset:2px}",
    ".panel{position:fixed;right:16px;bottom:72px;z-index:2147483001;width:min(440px,calc(100vw - 16px));max-height:min(640px,calc(100vh - 96px));display:flex;flex-direction:column;background:#fff;color:#1d2430;border-radius:12px;box-shadow:0 12px 40px rgba(0,0,0,.3);font-size:14px;line-height:1.45}",
    ".panel[hidden]{display:none}",
    "@media (max-width:480px){.panel{right:8px;left:8px;bottom:64px;width:auto;max-height:calc(100vh - 80px)}}",
    "header{display:flex;align-items:center;justify-content:space-between;padding:12px 14px;border-bottom:1px solid #e3e7ee}",
    "h2{margin:0;font-size:16px}",
    ".close{background:none;border:0;font-size:22px;line-height:1;cursor:pointer;color:#556;padding:4px 8px}",
    "input{width:calc(100% - 28px);margin:12px 14px 6px;padding:10px 12px;font-size:15px;border:1px solid #b8c2d0;border-radius:8px}",
    ".status{padding:0 14px;min-height:18px;color:#5a6472;font-size:12px}",
    "ul.results{list-style:none;margin:0;padding:4px 8px 10px;overflow-y:auto}",
    "li.result{border-radius:8px;padding:10px;margin:4px 0;cursor:pointer;border:1px solid transparent}",
    "li.result[aria-selected=true]{border-color:#0b5cad;background:#f1f6fc}",
    ".crumb{font-weight:600;color:#0b3d75}",
    ".snippet{color:#3e4856;margin-top:4px}",
    ".badges{margin-top:6px;display:flex;flex-wrap:wrap;gap:4px}",
    ".badge{font-size:11px;padding:1px 6px;border-radius:10px;background:#e8edf4;color:#334}",
    ".note{font-size:12px;color:#8a4b00;margin-top:4px}",
    ".detail{margin-top:8px;border-top:1px solid #e3e7ee;padding-top:8px;cursor:auto}",
    ".md ol,.md ul{padding-left:22px;margin:6px 0}.md p{margin:6px 0}.md h4{margin:8px 0 4px;font-size:14px}",
    ".md .table{overflow-x:auto;margin:6px 0}.md table{border-collapse:collapse;font-size:13px}.md th,.md td{border:1px solid #d5dbe4;padding:4px 6px;text-align:left;vertical-align:top}.md th{background:#f1f4f8}.md pre{white-space:pre-wrap;background:#eef1f5;padding:6px;border-radius:4px}",
    "code{background:#eef1f5;padding:0 3px;border-radius:3px;font-family:ui-monospace,monospace;font-size:13px}",
    "a{color:#0b5cad}",
    ".empty{padding:12px 14px}",
    ".feedback{margin-top:8px;display:flex;gap:6px;align-items:center;flex-wrap:wrap;font-size:13px;color:#3e4856}",
    ".vote{border:1px solid #b8c2d0;background:#fff;border-radius:6px;padding:3px 12px;cursor:pointer;font-size:13px}",
    "mark{background:#fff1b8;color:inherit;padding:0 1px;border-radius:2px}",
    ".best{background:#fff8d6;outline:2px solid #f5d86b;border-radius:3px}",
    "li.result.open>.snippet{display:none}",
    "ul.suggestions{list-style:none;margin:0;padding:2px 8px 8px;border-top:1px solid #e3e7ee;flex-shrink:0}ul.suggestions:empty{display:none}",
    ".suggest-head{font-size:11px;text-transform:uppercase;letter-spacing:.04em;color:#5a6472;padding:4px 6px 2px}",
    "li.suggestion{padding:6px 10px;border-radius:6px;cursor:pointer;color:#0b3d75}",
    "li.suggestion[aria-selected=true]{background:#f1f6fc;outline:1px solid #0b5cad}",
    ".chip{display:inline-flex;align-self:flex-start;align-items:center;gap:4px;margin:0 14px 4px;padding:2px 4px 2px 10px;border-radius:12px;background:#e8edf4;font-size:12px}",
    ".chip[hidden]{display:none}.chip button{background:none;border:0;cursor:pointer;font-size:14px;line-height:1;padding:0 4px}",
    ".support-line{margin:6px 0}"
  ].join("");

  var host = el("div", { id: "helpdesk-qa-widget" });
  var shadow = host.attachShadow({ mode: "open" });
  shadow.appendChild(el("style", { text: CSS }));

  var launcher = el("button", { className: "launcher", type: "button", "aria-haspopup": "dialog", "aria-expanded": "false", text: T.help });
  var input = el("input", { type: "search", placeholder: T.placeholder, "aria-label": T.title, role: "combobox",
    "aria-autocomplete": "list", "aria-controls": "hqa-results", "aria-expanded": "false", autocomplete: "off" });
  var status = el("div", { className: "status", role: "status", "aria-live": "polite" });
  var list = el("ul", { className: "results", id: "hqa-results", role: "listbox", "aria-label": T.results });
  var suggestList = el("ul", { className: "suggestions", id: "hqa-suggestions", role: "listbox", "aria-label": T.suggestions });
  var chipText = el("span"), chipClear = el("button", { type: "button", "aria-label": T.removeFilter, text: "×" });
  var chip = el("div", { className: "chip", hidden: "" }, [chipText, chipClear]);
  var closeBtn = el("button", { className: "close", type: "button", "aria-label": T.close, text: "×" });
  var panel = el("div", { className: "panel", role: "dialog", "aria-modal": "true", "aria-labelledby": "hqa-title", hidden: "" }, [
    el("header", {}, [el("h2", { id: "hqa-title", text: T.title }), closeBtn]), input, chip, status, list, suggestList
  ]);
  shadow.appendChild(launcher);
  shadow.appendChild(panel);

  var results = [], active = -1, latest = 0, timer = null, finalTimer = null, controller = null, lastFocus = null,
    session = newSession(), staged = true; // staged: the service has a second stage (until it says otherwise)
  // What the list shows (`shown`: the question its results answer) and what was asked last
  // (`asked`: question, category and whether final), so that a final question neither
  // repeats a request nor waits for results that were never shown.
  var shown = null, asked = null;
  var category = "", suggestLatest = 0;

  function open() {
    if (!panel.hidden) return;
    lastFocus = document.activeElement;
    session = newSession();
    panel.hidden = false;
    launcher.setAttribute("aria-expanded", "true");
    input.focus();
    if (!input.value.trim()) loadSuggestions("");
  }

  // A portal's category tile: open the widget on that category (its questions first).
  function openCategory(id, label) {
    category = id || "";
    chipText.textContent = label || id || "";
    chip.hidden = !category;
    if (panel.hidden) open();
    if (input.value.trim()) search(); else loadSuggestions("");
  }
  chipClear.addEventListener("click", function () { openCategory("", ""); input.focus(); });

  // -- suggestions: the most asked questions for an empty box, completions while typing --
  // Below the results, in keyboard order too: ↓ from the box reaches the first result.
  function loadSuggestions(q) {
    var mine = ++suggestLatest;
    suggest({ q: q.slice(0, 200), lang: lang, country: country, category: category, limit: q ? "3" : "6" })
      .then(function (body) { if (mine === suggestLatest) showSuggestions(body.suggestions || [], q); })
      .catch(function () { if (mine === suggestLatest) suggestList.textContent = ""; });
  }
  function showSuggestions(items, q) {
    suggestList.textContent = "";
    if (active >= 0 && options()[active] && options()[active].classList.contains("suggestion")) active = -1;
    if (!items.length || q !== input.value.trim()) return;
    suggestList.appendChild(el("li", { className: "suggest-head", role: "presentation", text: q ? T.suggestions : T.popular }));
    items.forEach(function (sg, n) {
      var li = el("li", { className: "suggestion", role: "option", id: "hqa-s" + n, "aria-selected": "false", "data-source": sg.source, text: sg.text });
      li.addEventListener("click", function () { pick(sg.text); });
      suggestList.appendChild(li);
    });
    input.setAttribute("aria-expanded", "true");
  }
  function pick(text) {
    clearTimeout(timer); // the typing's pauses are over: the picked question is asked now
    clearTimeout(finalTimer);
    input.value = text;
    suggestList.textContent = "";
    active = -1;
    input.focus();
    search(true);
  }
  function options() { return panel.querySelectorAll("li.suggestion, li.result"); }
  function close() {
    if (panel.hidden) return;
    panel.hidden = true;
    launcher.setAttribute("aria-expanded", "false");
    // Back to where the member was; if that was nowhere in particular, to the Help button.
    (lastFocus && lastFocus !== document.body && lastFocus.focus ? lastFocus : launcher).focus();
  }

  function setActive(i) {
    var items = options();
    if (!items.length) return;
    active = Math.max(0, Math.min(items.length - 1, i));
    items.forEach(function (li, n) { li.setAttribute("aria-selected", n === active ? "true" : "false"); });
    input.setAttribute("aria-activedescendant", items[active].id);
    items[active].scrollIntoView({ block: "nearest" });
  }

  function toggle(i) {
    var li = list.querySelectorAll("li.result")[i], r = results[i];
    if (!li || !r) return;
    var existing = li.querySelector(".detail");
    if (existing) { existing.remove(); li.classList.remove("open"); li.setAttribute("aria-expanded", "false"); return; }
    var href = safeUrl(r.url), md = renderMarkdown(r.text);
    var detail = el("div", { className: "detail" }, [
      md,
      href ? el("a", { href: href, target: "_blank", rel: "noopener", className: "full", text: T.full + " →" }) : null
    ]);
    detail.addEventListener("click", function (e) { e.stopPropagation(); });
    li.appendChild(detail);
    li.classList.add("open"); // the full text replaces the snippet
    li.setAttribute("aria-expanded", "true");
    var best = markBest(md, r);
    // Open on the step that answers the question, inside the list's own scroll area.
    if (best) list.scrollTop += best.getBoundingClientRect().top - list.getBoundingClientRect().top - 40;
    reportOpened(r, i);
    var box = feedbackBox(r);
    if (box) detail.appendChild(box);
  }

  // -- feedback: which result was opened, and did it help (once per answer) -------------
  // Posts are retried on network errors; the API stores the same event once.
  // A vote is asked once per question and answer: the final question (rerank) brings a new
  // query_id for the same question, and a member who already voted must not be asked again.
  var queryId = null, voted = {};
  function post(path, payload, tries) {
    return fetch(api + path, { method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify(payload), keepalive: true })
      .then(function (r) { if (r.status >= 500) throw new Error("HTTP " + r.status); return r; })
      .catch(function () {
        if (tries > 1) setTimeout(function () { post(path, payload, tries - 1); }, 800);
      });
  }
  function reportOpened(r, i) {
    if (queryId) post("/v1/feedback/opened", { query_id: queryId, article_id: r.article_id, anchor: r.anchor, position: i + 1 }, 3);
  }
  function thanks(box) {
    box.textContent = "";
    var t = el("span", { className: "thanks", tabindex: "-1", text: T.thanks });
    box.appendChild(t);
    return t;
  }
  function feedbackBox(r) {
    if (!queryId) return null;
    // Once per answer to this question: the final answer's new query id does not ask again.
    var key = shown + " " + r.article_id + "#" + r.anchor;
    var box = el("div", { className: "feedback", role: "group", "aria-label": T.helped });
    if (key in voted) { thanks(box); return box; }
    function vote(helpful) {
      voted[key] = helpful;
      post("/v1/feedback", { query_id: queryId, article_id: r.article_id, anchor: r.anchor, helpful: helpful }, 3);
      thanks(box).focus();
    }
    var yes = el("button", { type: "button", className: "vote yes", text: T.yes });
    var no = el("button", { type: "button", className: "vote no", text: T.no });
    yes.addEventListener("click", function () { vote(true); });
    no.addEventListener("click", function () { vote(false); });
    box.appendChild(el("span", { text: T.helped }));
    box.appendChild(yes);
    box.appendChild(no);
    return box;
  }

  function badges(r) {
    var codes = r.countries.indexOf("ALL") >= 0 ? [T.all] : r.countries;
    return el("div", { className: "badges", "aria-label": T.countries }, codes.map(function (c) {
      return el("span", { className: "badge", text: c });
    }));
  }

  function show(body) {
    list.textContent = "";
    queryId = body.query_id || null;
    results = body.results || [];
    active = -1;
    input.removeAttribute("aria-activedescendant");
    if (!body.answered) {
      status.textContent = "";
      var s = body.support || {}, href = safeUrl(s.url || "");
      // Where to turn, and what to tell support there: not something to type in here.
      var box = el("li", { className: "empty", role: "option", "aria-selected": "false", id: "hqa-none" }, [
        el("p", { text: T.none }),
        el("p", { className: "support-line", text: T.include }),
        href ? el("a", { href: href, target: "_blank", rel: "noopener", className: "support", text: T.support + " →" }) : null
      ]);
      list.appendChild(box);
      input.setAttribute("aria-expanded", "true");
      results = [];
      return;
    }
    // Misspelt words searched as the articles spell them, Latin-script Russian in Cyrillic:
    // say what was searched, so results for "bestellung" under "Bestelung" make sense.
    status.textContent = body.searched_as ? T.searchedAs + ": " + body.searched_as : "";
    results.forEach(function (r, i) {
      var h = hl(r), crumb = marked(r.article_title, h.article_title, el("div", { className: "crumb" }));
      if (r.section_title !== r.article_title) {
        crumb.appendChild(document.createTextNode(" › "));
        marked(r.section_title, h.section_title, crumb);
      }
      // lang: the result's own language (a Russian answer on a German page is read as Russian).
      var li = el("li", { className: "result", role: "option", id: "hqa-r" + i, lang: r.lang, "aria-selected": "false", "aria-expanded": "false" }, [
        crumb,
        r.snippet ? marked(r.snippet, h.snippet, el("div", { className: "snippet" })) : el("div", { className: "snippet", text: snippet(r.text) }),
        r.available_languages.indexOf(lang) < 0
          ? el("div", { className: "note", text: T.onlyIn + " " + (LANG_NAMES[lang][r.lang] || r.lang) }) : null,
        // No country on the page: every country's sections come, so say whose a section is.
        !country && r.countries.indexOf("ALL") < 0
          ? el("div", { className: "note only-for", text: T.onlyFor + " " + r.countries.join(", ") }) : null,
        badges(r)
      ]);
      li.addEventListener("click", function () { setActive(Array.prototype.indexOf.call(options(), li)); toggle(i); input.focus(); });
      list.appendChild(li);
    });
    input.setAttribute("aria-expanded", results.length ? "true" : "false");
  }

  // Two paths: as-you-type (each 200 ms pause) asks the first stage, which is cheap; the
  // final question (Enter, a picked suggestion, typing stopped for 600 ms) asks with
  // rerank, and its results replace the shown ones in place (`replace`). The final answer
  // is shown as it is when the first stage's never was (slower than the pause, or
  // aborted by it). A service without a second stage is asked once per question: Enter
  // before the first search ran asks as-you-type.
  function search(picked, final) {
    var q = input.value.trim(), key = q + "\n" + category;
    if (final) {
      clearTimeout(finalTimer);
      if (!q || (asked && asked.key === key && (asked.final || !staged))) return; // already asked
      if (!staged) final = false;
    }
    var mine = ++latest;
    if (controller) controller.abort();
    if (!q) { list.textContent = ""; status.textContent = ""; results = []; shown = asked = null; loadSuggestions(""); return; }
    if (picked !== true && !final) loadSuggestions(q);
    controller = window.AbortController ? new AbortController() : null;
    asked = { key: key, final: !!final };
    if (!final || shown !== key) status.textContent = T.searching;
    // The question's language is detected (a member on the German page may ask in Russian);
    // the page's language only decides when it cannot be ("IBAN", "PV").
    ask({ q: q.slice(0, 500), fallback_lang: lang, country: country, category: category, limit: "5", session: session,
          source: "widget", rerank: final ? "true" : "" }, controller && controller.signal)
      .then(function (body) {
        if (mine !== latest) return;
        if (final && !body.reranked) staged = false; // no second stage: one request per question from now on
        if (final && shown === key) replace(body); else show(body);
        shown = key;
        if (!final && picked === true) search(true, true);
      })
      .catch(function (e) {
        if (mine !== latest || (e && e.name === "AbortError")) return;
        asked = null; // Enter asks again
        if (final && shown === key) { status.textContent = ""; return; } // the first stage's results stay
        list.textContent = "";
        shown = null;
        status.textContent = T.error;
      });
  }

  // The reranked results in place of the first stage's: nothing changes when the order is
  // the same, and the selected or opened result stays selected or opened where it went.
  function replace(body) {
    var key = function (r) { return r.article_id + "#" + r.anchor + "@" + r.lang; };
    var next = body.results || [];
    if (!body.reranked || next.map(key).join() === results.map(key).join()) { queryId = body.query_id || queryId; return; }
    var items = options(), current = active >= 0 ? items[active] : null;
    var chosen = current && current.classList.contains("result")
      ? key(results[Array.prototype.indexOf.call(list.querySelectorAll("li.result"), current)]) : null;
    var opened = Array.prototype.map.call(list.querySelectorAll("li.result.open"), function (li) {
      return key(results[Array.prototype.indexOf.call(list.querySelectorAll("li.result"), li)]);
    });
    show(body);
    next.forEach(function (r, i) {
      if (opened.indexOf(key(r)) >= 0) toggle(i);
      if (key(r) === chosen) setActive(Array.prototype.indexOf.call(options(), list.querySelectorAll("li.result")[i]));
    });
    // A suggestion chosen with ↓ (below the results) stays chosen: Enter still picks it.
    var still = current && current.classList.contains("suggestion") ? Array.prototype.indexOf.call(options(), current) : -1;
    if (still >= 0) setActive(still);
  }

  input.addEventListener("input", function () {
    clearTimeout(timer);
    clearTimeout(finalTimer);
    timer = setTimeout(search, 200);
    finalTimer = setTimeout(function () { search(false, true); }, 600);
  });
  input.addEventListener("focus", function () {
    if (!input.value.trim() && !suggestList.childNodes.length) loadSuggestions("");
  });
  input.addEventListener("keydown", function (e) {
    if (e.key === "ArrowDown") { e.preventDefault(); setActive(active + 1); }
    else if (e.key === "ArrowUp") { e.preventDefault(); setActive(active - 1); }
    else if (e.key === "Enter" && active < 0 && input.value.trim()) {
      e.preventDefault();
      clearTimeout(timer);
      search(false, true);
    }
    else if (e.key === "Enter" && active >= 0) {
      e.preventDefault();
      var item = options()[active];
      if (item && item.classList.contains("suggestion")) pick(item.textContent);
      else toggle(Array.prototype.indexOf.call(list.querySelectorAll("li.result"), item));
    }
  });
  panel.addEventListener("keydown", function (e) {
    if (e.key === "Escape") { e.preventDefault(); e.stopPropagation(); close(); return; }
    if (e.key !== "Tab") return;
    // Keep focus inside the dialog while it is open.
    var f = Array.prototype.filter.call(panel.querySelectorAll("button,a[href],input"), function (n) { return n.offsetParent !== null; });
    if (!f.length) return;
    var first = f[0], last = f[f.length - 1], cur = shadow.activeElement;
    if (e.shiftKey && cur === first) { e.preventDefault(); last.focus(); }
    else if (!e.shiftKey && cur === last) { e.preventDefault(); first.focus(); }
  });
  launcher.addEventListener("click", function () { panel.hidden ? open() : close(); });
  closeBtn.addEventListener("click", close);
  document.addEventListener("keydown", function (e) {
    var t = e.target, typing = t && (t.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(t.tagName));
    if (e.key === "Escape" && !panel.hidden) { e.preventDefault(); close(); }
    else if ((e.key === "k" || e.key === "K") && (e.ctrlKey || e.metaKey)) { e.preventDefault(); open(); }
    else if (e.key === "/" && !typing && panel.hidden) { e.preventDefault(); open(); }
  });

  window.HelpdeskQA.open = function (options) {
    options = options || {};
    if ("category" in options) openCategory(options.category, options.label);
    else open();
  };

  function mount() { document.body.appendChild(host); }
  if (document.body) mount(); else document.addEventListener("DOMContentLoaded", mount);
})();
