/*
 * Careline chat widget. Embed with one tag on any page of an allowed origin:
 *   <script src="https://support.example.com/widget.js" data-site="SITE_KEY" async></script>
 * A page whose user is logged in says who it is, signed by its server
 * (README, "Tell Careline who your customer is"): data-user-id,
 * data-user-hash (and data-user-name, data-user-email) on the tag, or
 * window.Careline.identify({user_id, user_hash, name, email}); and
 * window.Careline.logout() when its user logs out.
 *
 * Plain JavaScript, no dependencies. Everything lives in a shadow root, so the
 * host page's styles do not reach in and ours do not leak out; the widget adds
 * one element to the page and touches nothing else. Protocol: docs/protocol.md.
 */
(function () {
  "use strict";

  var script = document.currentScript ||
    document.querySelector('script[data-site][src*="widget.js"]');
  if (!script || window.__careline) return;
  window.__careline = true;

  var SITE = script.getAttribute("data-site");
  var BASE = new URL(script.src, location.href).origin;
  var WS_URL = BASE.replace(/^http/, "ws") + "/ws?site=" + encodeURIComponent(SITE);
  var KEY = "careline:" + SITE + ":";
  // How long a seq that skips ahead waits for the missing ones to arrive
  // live before the widget resumes (protocol §6.5).
  var GAP_GRACE_MS = 500;

  // ----- small helpers -----
  function store(name, value) {
    try {
      if (value === undefined) return localStorage.getItem(KEY + name);
      if (value === null) localStorage.removeItem(KEY + name);
      else localStorage.setItem(KEY + name, value);
    } catch (e) { /* private mode: keep going without persistence */ }
  }
  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    for (var k in attrs || {}) {
      if (k === "text") node.textContent = attrs[k];
      else if (k.slice(0, 2) === "on") node.addEventListener(k.slice(2), attrs[k]);
      else node.setAttribute(k, attrs[k]);
    }
    (children || []).forEach(function (c) { if (c) node.appendChild(c); });
    return node;
  }
  function id() {
    return "w-" + Date.now().toString(36) + "-" + Math.random().toString(36).slice(2, 10);
  }
  // A speech bubble drawn with SVG: no icon font or emoji font needed.
  function icon(d, size) {
    var ns = "http://www.w3.org/2000/svg";
    var svg = document.createElementNS(ns, "svg");
    svg.setAttribute("viewBox", "0 0 24 24");
    svg.setAttribute("width", size || "26");
    svg.setAttribute("height", size || "26");
    svg.setAttribute("aria-hidden", "true");
    var path = document.createElementNS(ns, "path");
    path.setAttribute("fill", "currentColor");
    path.setAttribute("d", d || "M4 3h16a2 2 0 0 1 2 2v11a2 2 0 0 1-2 2H9l-5 4v-4a2 2 0 0 1-2-2V5a2 2 0 0 1 2-2z");
    svg.appendChild(path);
    return svg;
  }
  function clock(iso) {
    var d = new Date(iso);
    return isNaN(d) ? "" : d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  }

  // ----- state -----
  var state = {
    token: store("token"),
    conversation: store("conversation"), // id of the current conversation
    status: null,
    lastSeq: 0,                           // every seq up to here is held (no gap below it)
    queued: [],                           // control frames waiting for the connection
    messages: {},                         // seq -> message frame
    pending: [],                          // sends not yet acknowledged (resent on reconnect)
    site: null,
    socket: null,
    connected: false,
    attempts: 0,
    open: false,
    unread: 0,
    typingTimer: null,
    lastTyping: 0,
    rated: false,
    files: {},                            // attachment id -> object URL (fetched with the token)
    uploads: [],                          // files on their way up: {name, progress}
    history: [],                          // the visitor's conversations, newest first
    historyMore: false                    // older ones remain on the server
  };
  // Who the host page says its user is (checked by the server, never here).
  state.identity = script.getAttribute("data-user-id") ? {
    user_id: script.getAttribute("data-user-id"),
    user_hash: script.getAttribute("data-user-hash") || "",
    name: script.getAttribute("data-user-name") || undefined,
    email: script.getAttribute("data-user-email") || undefined
  } : null;

  // ----- the DOM, inside a shadow root -----
  var host = el("div", { id: "careline-widget" });
  var root = host.attachShadow({ mode: "open" });
  root.appendChild(el("style", { text: CSS() }));

  var badge = el("span", { class: "badge", hidden: "" });
  var launcher = el("button", { class: "launcher", type: "button", "aria-expanded": "false",
    "aria-label": "Open chat", onclick: toggle }, [icon(), badge]);
  var title = el("h2", { id: "cl-title", text: "Chat" });
  var statusLine = el("p", { class: "status", role: "status" });
  var list = el("ol", { class: "messages", role: "log", "aria-live": "polite", "aria-labelledby": "cl-title" });
  var typing = el("p", { class: "typing", "aria-live": "polite" });
  var input = el("textarea", { id: "cl-input", rows: "2", maxlength: "8000", placeholder: "Write a message…" });
  var sendButton = el("button", { type: "submit", class: "send", text: "Send" });
  var picker = el("input", { type: "file", hidden: "", id: "cl-file",
    accept: "image/png,image/jpeg,image/gif,image/webp,application/pdf,.zip,.docx,.xlsx,.pptx,.odt,.txt,.csv,.log" });
  // A paper clip (Material Icons' attach_file, Apache-2.0).
  var CLIP = "M16.5 6v11.5c0 2.21-1.79 4-4 4s-4-1.79-4-4V5c0-1.38 1.12-2.5 2.5-2.5s2.5 1.12 2.5 2.5v10.5c0 .55-.45 1-1 1s-1-.45-1-1V6H10v9.5c0 1.38 1.12 2.5 2.5 2.5s2.5-1.12 2.5-2.5V5c0-2.21-1.79-4-4-4S7 2.79 7 5v12.5c0 3.04 2.46 5.5 5.5 5.5s5.5-2.46 5.5-5.5V6h-1.5z";
  var attachButton = el("button", { type: "button", class: "attach", "aria-label": "Attach a file",
    title: "Attach a file", onclick: function () { picker.click(); } }, [icon(CLIP, "20")]);
  picker.addEventListener("change", function () {
    Array.prototype.forEach.call(picker.files, upload);
    picker.value = "";
  });
  var human = el("button", { type: "button", class: "human", text: "Talk to a person", onclick: handoff });
  var composer = el("form", { class: "composer", onsubmit: onSend }, [
    el("label", { for: "cl-input", class: "sr-only", text: "Your message" }), attachButton, picker, input, sendButton
  ]);
  var extra = el("div", { class: "extra" });
  // The visitor's conversations (a verified customer's, from every device),
  // newest first, a page at a time.
  var historyButton = el("button", { type: "button", class: "history-toggle", hidden: "",
    "aria-label": "Your conversations", title: "Your conversations", text: "☰", onclick: toggleHistory });
  var historyList = el("ul", { class: "history-list", "aria-label": "Your conversations" });
  var moreButton = el("button", { type: "button", class: "more", hidden: "", text: "Earlier conversations", onclick: loadMoreHistory });
  var historyPane = el("div", { class: "history", hidden: "" }, [historyList, moreButton]);
  var panel = el("section", { class: "panel", role: "dialog", "aria-labelledby": "cl-title", hidden: "" }, [
    el("header", {}, [historyButton, title,
      el("button", { type: "button", class: "close", "aria-label": "Close chat", text: "×", onclick: toggle })]),
    statusLine, historyPane, list, typing, extra, composer,
    el("div", { class: "actions" }, [human])
  ]);
  root.appendChild(launcher);
  root.appendChild(panel);

  input.addEventListener("keydown", function (e) {
    if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); onSend(e); }
  });
  input.addEventListener("input", function () {
    var now = Date.now();
    if (state.conversation && now - state.lastTyping > 3000) {
      state.lastTyping = now;
      send({ type: "typing", conversation_id: state.conversation });
    }
  });
  panel.addEventListener("keydown", function (e) { if (e.key === "Escape") toggle(); });
  // Files dropped anywhere on the open panel are attached.
  panel.addEventListener("dragover", function (e) { e.preventDefault(); panel.classList.add("dropping"); });
  panel.addEventListener("dragleave", function () { panel.classList.remove("dropping"); });
  panel.addEventListener("drop", function (e) {
    e.preventDefault();
    panel.classList.remove("dropping");
    Array.prototype.forEach.call((e.dataTransfer && e.dataTransfer.files) || [], upload);
  });

  function toggle() {
    state.open = !state.open;
    panel.hidden = !state.open;
    launcher.setAttribute("aria-expanded", String(state.open));
    launcher.setAttribute("aria-label", state.open ? "Close chat" : "Open chat");
    if (state.open) {
      state.unread = 0;
      renderBadge();
      markRead();
      input.focus();
    } else {
      launcher.focus();
    }
  }

  function renderBadge() {
    badge.hidden = state.unread === 0;
    badge.textContent = state.unread > 9 ? "9+" : String(state.unread);
    launcher.setAttribute("aria-label", state.open ? "Close chat" :
      state.unread ? "Open chat, " + state.unread + " unread" : "Open chat");
  }

  function setStatus(text) { statusLine.textContent = text || ""; }

  // ----- messages -----
  function addMessage(m) {
    if (String(m.conversation_id) !== String(state.conversation)) return;
    if (state.messages[m.seq]) return; // already held: a resume and live delivery overlapped
    state.messages[m.seq] = m;
    // lastSeq only moves over a run without holes, so a resume after a
    // drop always asks for everything still missing.
    while (state.messages[state.lastSeq + 1]) state.lastSeq++;
    if (m.seq > state.lastSeq + 1 && !state.resuming) {
      // A gap. Usually this message overtook the missing one on its way
      // from another server, which arrives a moment later; give it that
      // moment, then fetch what is still missing in order (protocol §6.5).
      watchGap();
    }
    state.pending = state.pending.filter(function (p) { return p.client_msg_id !== m.client_msg_id; });
    renderMessages();
    var mine = m.sender && m.sender.kind === "customer";
    if (!mine && !state.open) { state.unread++; renderBadge(); }
    if (!mine && state.open) markRead();
  }

  function watchGap() {
    if (state.gapTimer) return;
    state.gapTimer = setTimeout(function () {
      state.gapTimer = null;
      if (holdsPast(state.lastSeq) && !state.resuming) resume();
    }, GAP_GRACE_MS);
  }

  function holdsPast(seq) {
    return Object.keys(state.messages).some(function (held) { return Number(held) > seq; });
  }

  function renderMessages() {
    var seqs = Object.keys(state.messages).map(Number).sort(function (a, b) { return a - b; });
    list.textContent = "";
    // A question's buttons answer it only while it is the latest message and
    // nothing the customer wrote is on its way; older ones are history
    // (shown disabled: what was offered stays readable). docs/decisions.md.
    var answerable = state.pending.length ? null : seqs[seqs.length - 1];
    seqs.forEach(function (seq) { list.appendChild(renderOne(state.messages[seq], false, seq === answerable)); });
    state.pending.forEach(function (p) {
      list.appendChild(renderOne({ body: p.body, attachment: p.attachment, sender: { kind: "customer", name: "You" } }, true));
    });
    state.uploads.forEach(function (u) {
      list.appendChild(el("li", { class: "message customer pending" }, [
        el("p", { class: "meta" }, [el("strong", { text: "You" }), el("span", { text: " · uploading " + u.progress + "%" })]),
        el("progress", { max: "100", value: String(u.progress), "aria-label": "Uploading " + u.name })
      ]));
    });
    list.scrollTop = list.scrollHeight;
  }

  function renderOne(m, pending, answerable) {
    var kind = (m.sender && m.sender.kind) || "system";
    var who = kind === "customer" ? "You" : (m.sender && m.sender.name) || "";
    var item = el("li", { class: "message " + kind + (pending ? " pending" : "") }, [
      el("p", { class: "meta" }, [el("strong", { text: who }),
        el("span", { text: pending ? " · sending…" : m.at ? " · " + clock(m.at) : "" })]),
      m.body ? el("p", { class: "body", text: m.body }) : null // textContent: markup is shown, never run
    ]);
    if (m.attachment) item.appendChild(renderFile(m.attachment));
    if (m.options && m.options.length) {
      var opts = el("div", { class: "options", role: "group", "aria-label": "Answers to choose from" });
      m.options.forEach(function (o) {
        opts.appendChild(el("button", answerable ? { type: "button", text: o, onclick: function () { post(o); } }
          : { type: "button", text: o, disabled: "" }));
      });
      item.appendChild(opts);
    }
    return item;
  }

  // ----- files -----
  // Files are fetched with the visitor token (no cookies cross origins) and
  // shown from object URLs; an image becomes a thumbnail, anything else a
  // download link with its name and size.
  function renderFile(a) {
    var box = el("div", { class: "file" });
    var label = a.name + " (" + size(a.size) + ")";
    var link = el("a", { href: "#", class: "download", download: a.name, text: label });
    if (a.image) {
      var img = el("img", { alt: a.name, class: "thumb" });
      box.appendChild(img);
      fileUrl(a).then(function (url) { img.src = url; link.href = url; }).catch(function () { img.alt = a.name + " (could not load)"; });
    }
    link.addEventListener("click", function (e) {
      if (link.getAttribute("href") !== "#") return;
      e.preventDefault();
      fileUrl(a).then(function (url) { link.href = url; link.click(); })
        .catch(function () { setStatus("That file could not be downloaded; try again."); });
    });
    box.appendChild(link);
    return box;
  }

  function fileUrl(a) {
    if (state.files[a.id]) return Promise.resolve(state.files[a.id]);
    var url = BASE + (a.url || "/api/widget/v1/attachments/" + a.id) + "?site=" + encodeURIComponent(SITE);
    return fetch(url, { headers: { Authorization: "Bearer " + state.token }, credentials: "omit" })
      .then(function (r) { if (!r.ok) throw new Error("file " + r.status); return r.blob(); })
      .then(function (blob) { return (state.files[a.id] = URL.createObjectURL(blob)); });
  }

  function size(bytes) {
    if (bytes < 1024) return bytes + " B";
    if (bytes < 1048576) return Math.round(bytes / 1024) + " KB";
    return (bytes / 1048576).toFixed(1) + " MB";
  }

  // XMLHttpRequest, not fetch: only it reports upload progress.
  function upload(file) {
    if (!state.conversation || !state.token) {
      setStatus("Write a message first, then attach your file.");
      return;
    }
    var entry = { name: file.name, progress: 0 };
    state.uploads.push(entry);
    renderMessages();
    var xhr = new XMLHttpRequest();
    xhr.open("POST", BASE + "/api/widget/v1/conversations/" + encodeURIComponent(state.conversation) +
      "/attachments?site=" + encodeURIComponent(SITE) + "&name=" + encodeURIComponent(file.name));
    xhr.setRequestHeader("Authorization", "Bearer " + state.token);
    xhr.upload.onprogress = function (e) {
      if (e.lengthComputable) { entry.progress = Math.round(100 * e.loaded / e.total); renderMessages(); }
    };
    function done(error) {
      state.uploads = state.uploads.filter(function (u) { return u !== entry; });
      if (error) setStatus(error);
      renderMessages();
    }
    xhr.onerror = function () { done("The file could not be sent; check your connection and try again."); };
    xhr.onload = function () {
      var reply = {};
      try { reply = JSON.parse(xhr.responseText); } catch (e) { /* not JSON */ }
      if (xhr.status !== 201) {
        done((reply.error && reply.error.message) ? "File not sent: " + reply.error.message : "The file could not be sent.");
        return;
      }
      done(null);
      var message = { client_msg_id: id(), body: "", attachment_id: reply.id, attachment: reply };
      state.pending.push(message);
      renderMessages();
      transmit(message);
    };
    xhr.send(file);
  }

  function markRead() {
    if (state.conversation && state.lastSeq && state.connected) {
      send({ type: "read", conversation_id: state.conversation, seq: state.lastSeq });
    }
  }

  // ----- sending -----
  function onSend(e) {
    if (e) e.preventDefault();
    var body = input.value.trim();
    if (!body) return;
    input.value = "";
    post(body);
  }

  function post(body) {
    var message = { client_msg_id: id(), body: body };
    state.pending.push(message);
    renderMessages();
    transmit(message);
  }

  function transmit(message) {
    if (!state.connected) return; // resent after reconnect
    if (!state.conversation) {
      // The first message starts the conversation; a retried start with the
      // same client_msg_id gets the same conversation back.
      if (!state.starting || state.starting === message.client_msg_id) {
        state.starting = message.client_msg_id;
        send({ type: "start", client_msg_id: message.client_msg_id, body: message.body });
      }
      return;
    }
    send({ type: "send", conversation_id: state.conversation,
      client_msg_id: message.client_msg_id, body: message.body,
      attachment_id: message.attachment_id || undefined });
  }

  function handoff() {
    if (!state.conversation) { post("I would like to talk to a person"); return; }
    act({ type: "handoff", conversation_id: state.conversation });
  }

  function send(frame) {
    if (state.socket && state.socket.readyState === 1) state.socket.send(JSON.stringify(frame));
  }

  // Actions the customer took (contact details, rating, asking for a
  // person) must not vanish in a reconnect: they wait for the connection.
  function act(frame) {
    if (state.connected) send(frame);
    else state.queued.push(frame);
  }

  // ----- conversation state -----
  function setConversation(c) {
    var fresh = String(c.id) !== String(state.conversation);
    if (fresh) {
      state.conversation = String(c.id);
      store("conversation", state.conversation);
      if (!state.history.some(function (h) { return String(h.id) === String(c.id); })) {
        state.history.unshift(c);
        renderHistory();
      }
      state.messages = {};
      state.lastSeq = 0;
      state.rated = false;
    }
    state.status = c.status;
    if (c.status === "bot") setStatus("Our assistant is answering. A person is one click away.");
    else if (c.status === "waiting") setStatus("Waiting for a person" + (c.ticket_number ? " · ticket #" + c.ticket_number : "") + "…");
    else if (c.status === "live") setStatus("Chatting with " + ((c.assignee && c.assignee.name) || "our team"));
    else if (c.status === "resolved") setStatus("This conversation is resolved. Write again to reopen it.");
    else setStatus("");
    human.hidden = c.status !== "bot";
    renderExtra();
    if (fresh && state.starting) {
      // Anything written while the conversation was being created goes out now.
      var first = state.starting;
      state.starting = null;
      state.pending.forEach(function (p) { if (p.client_msg_id !== first) transmit(p); });
    }
  }

  function renderExtra() {
    var needsContact = state.site && !state.email &&
      ((state.site.require_email && !state.conversation) ||
       (state.status === "waiting" && !state.site.agents_online));
    var resolved = state.status === "resolved";
    // Rebuilt only when what is needed changes: a form being filled in
    // must not be wiped by the next status frame.
    var shown = (needsContact ? "contact " : "") + (resolved ? (state.rated ? "thanks" : "rating") : "");
    if (shown === state.extraShown) return;
    state.extraShown = shown;
    extra.textContent = "";
    if (needsContact) extra.appendChild(contactForm());
    if (resolved && !state.rated) extra.appendChild(ratingForm());
    if (resolved && state.rated) extra.appendChild(el("p", { class: "thanks", text: "Thank you for your rating!" }));
  }

  function contactForm() {
    var name = el("input", { id: "cl-name", autocomplete: "name" });
    var email = el("input", { id: "cl-email", type: "email", autocomplete: "email", required: "" });
    var error = el("p", { class: "error", role: "alert" });
    return el("form", { class: "contact", onsubmit: function (e) {
      e.preventDefault();
      if (!email.value.trim()) { error.textContent = "Enter your email so we can reply."; email.focus(); return; }
      state.email = email.value.trim();
      store("email", state.email);
      act({ type: "contact", name: name.value.trim(), email: state.email });
      renderExtra();
    } }, [
      el("p", { text: state.status === "waiting" ? "No one is online right now. Leave your email and we will reply by email." : "Tell us how to reach you." }),
      el("label", { for: "cl-name", text: "Name (optional)" }), name,
      el("label", { for: "cl-email", text: "Email" }), email, error,
      el("button", { type: "submit", text: "Save" })
    ]);
  }

  function ratingForm() {
    var score = 0;
    var stars = el("div", { class: "stars", role: "radiogroup", "aria-label": "Rate the help from 1 to 5" });
    [1, 2, 3, 4, 5].forEach(function (n) {
      stars.appendChild(el("button", { type: "button", role: "radio", "aria-checked": "false",
        "aria-label": n + " of 5", text: "★", onclick: function () {
          score = n;
          Array.prototype.forEach.call(stars.children, function (b, i) {
            b.setAttribute("aria-checked", String(i + 1 === n));
            b.classList.toggle("on", i < n);
          });
        } }));
    });
    var comment = el("textarea", { id: "cl-comment", rows: "2", maxlength: "2000" });
    return el("form", { class: "rating", onsubmit: function (e) {
      e.preventDefault();
      if (!score) return;
      act({ type: "rate", conversation_id: state.conversation, score: score, comment: comment.value.trim() });
      state.rated = true;
      renderExtra();
    } }, [
      el("p", { text: "How did we do?" }), stars,
      el("label", { for: "cl-comment", text: "Comment (optional)" }), comment,
      el("button", { type: "submit", text: "Send rating" })
    ]);
  }

  // ----- the connection -----
  function resume() {
    if (!state.conversation) return;
    clearTimeout(state.gapTimer);
    state.gapTimer = null;
    state.resuming = true;
    state.resumedFrom = state.lastSeq;
    send({ type: "resume", conversation_id: state.conversation, after_seq: state.lastSeq });
  }

  function onFrame(frame) {
    switch (frame.type) {
      case "welcome":
        state.connected = true;
        state.attempts = 0;
        var known = (frame.conversations || []).some(function (c) { return String(c.id) === String(state.conversation); });
        if (state.conversation && !known) { state.conversation = null; store("conversation", null); }
        // A verified customer on a device new to them: their latest
        // conversation (the list is newest first) follows them here.
        if (!state.conversation && state.verified && frame.conversations && frame.conversations.length) {
          setConversation(frame.conversations[0]);
        }
        if (state.conversation) resume();
        state.starting = null;
        state.pending.forEach(transmit);
        state.queued.splice(0).forEach(send);
        break;
      case "conversation":
        // Only the current conversation, or the one a start just created.
        if (String(frame.id) === String(state.conversation) || (!state.conversation && state.starting)) {
          setConversation(frame);
        }
        break;
      case "message": addMessage(frame); break;
      case "resumed":
        state.resuming = false;
        if (String(frame.conversation_id) !== String(state.conversation)) break;
        // Everything up to last_seq has been sent: what is still missing
        // below it was lost on the way, so ask again; a hole above it is a
        // live message that overtook another (protocol §6.4), worth another
        // wait only if this resume got somewhere (a hole the server cannot
        // fill, e.g. after a database restore, must not resume forever; the
        // next live message looks again).
        if (state.lastSeq < frame.last_seq) resume();
        else if (holdsPast(state.lastSeq) && state.lastSeq > state.resumedFrom) watchGap();
        break;
      case "ack":
        // Committed. Its message frame normally arrives about now; if it
        // got lost, a resume fetches it (the bubble says "sending" until then).
        if (String(frame.conversation_id) === String(state.conversation)) {
          var seq = frame.seq;
          setTimeout(function () {
            if (state.lastSeq < seq && !state.resuming) resume();
          }, 1500);
        }
        break;
      case "typing":
        if (frame.sender && frame.sender.kind !== "customer") {
          typing.textContent = (frame.sender.name || "Someone") + " is typing…";
          clearTimeout(state.typingTimer);
          state.typingTimer = setTimeout(function () { typing.textContent = ""; }, 4000);
        }
        break;
      case "resume_required": resume(); break;
      case "error":
        if (frame.code === "rate_limited") setStatus("Slow down a little, please.");
        else if (frame.code === "too_large") setStatus("That message is too long; split it in two.");
        else if (frame.code === "invalid" && frame.message) setStatus(frame.message);
        else if (frame.code === "gone") closed(frame.message);
        break;
    }
  }

  function connect() {
    fetch(BASE + "/api/widget/v1/session", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ site_key: SITE, visitor_token: state.token || undefined, identity: state.identity || undefined }),
      credentials: "omit"
    }).then(function (r) {
      // 410: the site was archived. Its message says so; no retry helps.
      if (r.status === 410) {
        return r.json().catch(function () { return {}; }).then(function (body) {
          throw { closed: (body.error && body.error.message) || "This chat is closed." };
        });
      }
      if (!r.ok) throw new Error("session " + r.status);
      return r.json();
    }).then(function (session) {
      if (session.identity_error && window.console) console.warn("Careline: identity not taken: " + session.identity_error);
      state.verified = session.verified;
      state.history = session.conversations || [];
      // The session lists the 20 newest: there may be older ones.
      state.historyMore = state.history.length >= 20;
      renderHistory();
      state.token = session.visitor_token;
      store("token", state.token);
      state.site = session.site;
      state.email = store("email");
      title.textContent = session.site.name || "Chat";
      host.style.setProperty("--cl-color", /^#[0-9a-fA-F]{3,8}$/.test(session.site.color) ? session.site.color : "#1f5fc4");
      host.setAttribute("data-position", session.site.position === "bottom-left" ? "bottom-left" : "bottom-right");
      if (!state.conversation && list.children.length === 0 && session.site.greeting) {
        list.appendChild(el("li", { class: "message greeting" }, [el("p", { class: "body", text: session.site.greeting })]));
      }
      renderExtra();
      open();
    }).catch(function (e) {
      if (e && e.closed) closed(e.closed);
      else retryLater();
    });
  }

  // The site takes no new chats (archived): say so, and take no input.
  function closed(message) {
    if (state.closed) return;
    state.closed = true;
    setStatus("This chat is closed.");
    list.appendChild(el("li", { class: "message system closed" }, [el("p", { class: "body", text: message })]));
    [input, sendButton, attachButton].forEach(function (c) { c.disabled = true; });
    human.hidden = true;
    if (state.socket) state.socket.close();
  }

  function open() {
    var socket = new WebSocket(WS_URL);
    state.socket = socket;
    socket.onopen = function () { socket.send(JSON.stringify({ type: "hello", visitor_token: state.token })); };
    socket.onmessage = function (e) {
      try { onFrame(JSON.parse(e.data)); } catch (err) { /* ignore a frame we cannot read */ }
    };
    socket.onclose = function (e) {
      state.connected = false;
      state.resuming = false;
      if (state.closed) return;
      if (e.code === 1008) { setStatus("The chat is not available on this page."); return; }
      retryLater();
    };
  }

  function retryLater() {
    state.connected = false;
    setStatus("Reconnecting…");
    // Exponential backoff with jitter, so a server restart is not met by
    // every widget at the same instant.
    var delay = Math.min(30000, 500 * Math.pow(2, state.attempts++)) * (0.5 + Math.random());
    setTimeout(connect, delay);
  }

  function CSS() {
    return [
      ":host{all:initial;position:fixed;right:16px;bottom:16px;z-index:2147483000;font:14px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;color:#1d2330;--cl-color:#1f5fc4}",
      "*{box-sizing:border-box;font:inherit}",
      "button{cursor:pointer}",
      ":focus-visible{outline:3px solid #f59e0b;outline-offset:2px}",
      ".sr-only{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0)}",
      ".launcher{width:56px;height:56px;border-radius:50%;border:0;background:var(--cl-color);color:#fff;box-shadow:0 4px 14px rgba(0,0,0,.25);position:relative;display:flex;align-items:center;justify-content:center}",
      "[hidden]{display:none!important}",
      ".badge{position:absolute;top:-4px;right:-4px;min-width:20px;height:20px;border-radius:10px;background:#b42318;color:#fff;font-size:12px;line-height:20px;padding:0 5px}",
      ".panel{position:absolute;right:0;bottom:68px;width:360px;max-width:calc(100vw - 32px);height:520px;max-height:calc(100vh - 100px);background:#fff;border-radius:12px;box-shadow:0 8px 30px rgba(0,0,0,.25);display:flex;flex-direction:column;overflow:hidden}",
      ".panel[hidden]{display:none}",
      ":host([data-position=bottom-left]){right:auto;left:16px}",
      ":host([data-position=bottom-left]) .panel{right:auto;left:0}",
      "header{background:var(--cl-color);color:#fff;display:flex;align-items:center;justify-content:space-between;padding:10px 14px}",
      "h2{margin:0;font-size:16px;font-weight:600;flex:1}",
      ".history-toggle{background:none;border:0;color:#fff;font-size:18px;line-height:1;margin-right:8px}",
      ".history{flex:1;overflow-y:auto;padding:10px 14px}",
      ".history-list{list-style:none;margin:0 0 8px;padding:0}",
      ".history-list button{width:100%;text-align:left;border:1px solid #d9dee7;background:#fff;border-radius:6px;padding:8px 10px;margin-bottom:6px}",
      ".history-list button[aria-current=true]{border-color:var(--cl-color);font-weight:600}",
      ".more{border:1px solid var(--cl-color);background:#fff;color:var(--cl-color);border-radius:6px;padding:5px 10px}",
      ".close{background:none;border:0;color:#fff;font-size:24px;line-height:1}",
      ".status{margin:0;padding:6px 14px;font-size:12px;color:#5b6475;background:#f6f7f9}",
      ".messages{list-style:none;margin:0;padding:10px 14px;flex:1;overflow-y:auto}",
      ".message{margin:0 0 8px;max-width:85%}",
      ".message p{margin:0}",
      ".message .meta{font-size:11px;color:#5b6475}",
      ".message .body{white-space:pre-wrap;overflow-wrap:anywhere;padding:7px 10px;border-radius:10px;background:#eef2f7}",
      ".message.customer{margin-left:auto}",
      ".message.customer .body{background:var(--cl-color);color:#fff}",
      ".message.pending{opacity:.6}",
      ".message.system .body,.message.greeting .body{background:#fffaeb}",
      ".options{display:flex;flex-wrap:wrap;gap:6px;margin-top:6px}",
      ".options button,.actions button,form button{border:1px solid var(--cl-color);background:#fff;color:var(--cl-color);border-radius:6px;padding:5px 10px}",
      ".options button:disabled{border-color:#9aa3b2;color:#5b6475;cursor:default}",
      ".typing{margin:0;padding:0 14px;min-height:18px;font-size:12px;color:#5b6475}",
      ".extra form{padding:8px 14px;border-top:1px solid #d9dee7;display:grid;gap:4px}",
      ".extra p{margin:0}",
      ".extra input,.extra textarea{border:1px solid #9aa3b2;border-radius:6px;padding:6px}",
      ".error{color:#b42318}",
      ".stars{display:flex;gap:4px}",
      ".stars button{border:0;background:none;font-size:22px;color:#c3c9d4;padding:0 2px}",
      ".stars button.on{color:#f5b400}",
      ".composer{display:flex;gap:6px;padding:8px 14px;border-top:1px solid #d9dee7}",
      ".composer textarea{flex:1;resize:none;border:1px solid #9aa3b2;border-radius:6px;padding:6px}",
      ".attach{background:none;border:1px solid #9aa3b2;border-radius:6px;padding:0 6px;color:#5b6475;display:flex;align-items:center}",
      ".file{margin-top:4px;display:flex;flex-direction:column;gap:3px;align-items:flex-start}",
      ".message.customer .file{align-items:flex-end}",
      ".thumb{max-width:200px;max-height:160px;border-radius:8px;border:1px solid #d9dee7}",
      ".download{color:var(--cl-color);overflow-wrap:anywhere}",
      "progress{width:100%}",
      ".panel.dropping{outline:3px dashed var(--cl-color);outline-offset:-6px}",
      ".send{background:var(--cl-color);color:#fff;border:0;border-radius:6px;padding:0 14px}",
      ".composer :disabled{opacity:.5;cursor:default}",
      ".actions{padding:0 14px 10px}",
      ".actions button[hidden]{display:none}",
      "@media (max-width:480px){.panel,:host([data-position=bottom-left]) .panel{position:fixed;inset:0;width:auto;max-width:none;height:auto;max-height:none;border-radius:0}}"
    ].join("\n");
  }

  // ----- earlier conversations -----
  function historyLabel(c) {
    var names = { bot: "with our assistant", waiting: "waiting", live: "open", resolved: "resolved", closed: "closed" };
    return (c.ticket_number ? "Ticket #" + c.ticket_number : "Conversation " + c.id) + " · " + (names[c.status] || c.status);
  }
  function renderHistory() {
    while (historyList.firstChild) historyList.removeChild(historyList.firstChild);
    state.history.forEach(function (c) {
      var current = String(c.id) === String(state.conversation);
      historyList.appendChild(el("li", {}, [el("button", { type: "button", "aria-current": current ? "true" : "false",
        text: historyLabel(c), onclick: function () { pickConversation(c); } })]));
    });
    moreButton.hidden = !state.historyMore;
    historyButton.hidden = state.history.length < 2 && !state.historyMore;
  }
  function toggleHistory() {
    historyPane.hidden = !historyPane.hidden;
    list.hidden = !historyPane.hidden;
    historyButton.setAttribute("aria-expanded", String(!historyPane.hidden));
    if (!historyPane.hidden) renderHistory();
  }
  function pickConversation(c) {
    if (String(c.id) !== String(state.conversation)) {
      while (list.firstChild) list.removeChild(list.firstChild);
      setConversation(c);
      resume();
    }
    toggleHistory();
  }
  function loadMoreHistory() {
    var last = state.history[state.history.length - 1];
    if (!last || !state.token) return;
    fetch(BASE + "/api/widget/v1/conversations?site=" + encodeURIComponent(SITE) + "&before=" + encodeURIComponent(last.id), {
      headers: { "Authorization": "Bearer " + state.token }, credentials: "omit"
    }).then(function (r) { if (!r.ok) throw new Error("history " + r.status); return r.json(); })
      .then(function (page) {
        state.history = state.history.concat(page.conversations || []);
        state.historyMore = !!page.more;
        renderHistory();
      }).catch(function () { setStatus("Earlier conversations could not be loaded; try again."); });
  }

  // Starts over as someone else (or as nobody): the socket closes, what
  // this browser shows and keeps of the conversation goes.
  function restart() {
    if (!state.started) return; // start() connects with what is known then
    var socket = state.socket;
    state.socket = null;
    if (socket) { socket.onclose = null; socket.close(1000); }
    state.connected = false;
    state.conversation = null; store("conversation", null);
    state.messages = {}; state.lastSeq = 0; state.pending = []; state.queued = [];
    state.email = null; store("email", null);
    state.history = []; state.historyMore = false; renderHistory();
    historyPane.hidden = true; list.hidden = false;
    while (list.firstChild) list.removeChild(list.firstChild);
    connect();
  }

  window.Careline = {
    // The host page's user, signed by its server: their chats follow them.
    identify: function (who) {
      if (!who || !who.user_id) return;
      state.identity = {
        user_id: String(who.user_id), user_hash: String(who.user_hash || ""),
        name: who.name || undefined, email: who.email || undefined
      };
      restart();
    },
    // The host page's user logged out: this browser's token ends on the
    // server and here, so the next person starts from nothing.
    logout: function () {
      var token = state.token;
      state.identity = null;
      state.token = null; store("token", null);
      var done = function () { restart(); };
      if (!token) return done();
      fetch(BASE + "/api/widget/v1/logout", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ site_key: SITE, visitor_token: token }),
        credentials: "omit"
      }).then(done, done);
    }
  };

  function start() {
    state.started = true;
    document.body.appendChild(host);
    connect();
  }
  if (document.body) start();
  else document.addEventListener("DOMContentLoaded", start);
})();
