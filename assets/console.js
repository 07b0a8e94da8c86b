/*
 * Careline agent console: presence, the live queue, my conversations with
 * unread counts, and the chat pane. One socket; every conversation is kept
 * in seq order and resumed from the last seq held after any reconnect, so
 * the page never needs a refresh. Protocol: docs/protocol.md.
 */
(function () {
  "use strict";

  var root = document.getElementById("console");
  if (!root) return;
  var ME = root.getAttribute("data-me");
  var $ = function (id) { return document.getElementById(id); };

  var state = {
    socket: null,
    attempts: 0,
    connected: false,
    presence: localStorage.getItem("careline:presence") || "away",
    conversations: {},   // id -> { frame, messages: {seq: frame}, lastSeq, unread }
    selected: null,
    queue: [],
    site: $("site-filter").value,    // a site's id: only its conversations are listed ("" for all)
    pending: {},         // client_msg_id -> frame not yet acknowledged (resent after a reconnect)
    lastTyping: 0,
    typingTimer: null
  };
  $("presence").value = state.presence;

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
  function clock(iso) {
    var d = new Date(iso);
    return isNaN(d) ? "" : d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  }
  function uid() { return "c-" + Date.now().toString(36) + "-" + Math.random().toString(36).slice(2, 10); }
  function send(frame) {
    if (state.socket && state.socket.readyState === 1) state.socket.send(JSON.stringify(frame));
  }

  function conversation(id) {
    id = String(id);
    if (!state.conversations[id]) {
      state.conversations[id] = { frame: { id: id }, messages: {}, lastSeq: 0, unread: 0 };
    }
    return state.conversations[id];
  }

  // Subscribes to a conversation and catches up from the last seq held.
  function follow(id) {
    var c = conversation(id);
    clearTimeout(c.gapTimer);
    c.gapTimer = null;
    c.resuming = true;
    c.resumedFrom = c.lastSeq;
    send({ type: "resume", conversation_id: String(id), after_seq: c.lastSeq });
  }

  // How long a seq that skips ahead waits for the missing ones to arrive
  // live before the console resumes (protocol §6.5).
  var GAP_GRACE_MS = 500;

  function holdsPast(c) {
    return Object.keys(c.messages).some(function (held) { return Number(held) > c.lastSeq; });
  }

  function watchGap(id, c) {
    if (c.gapTimer) return;
    c.gapTimer = setTimeout(function () {
      c.gapTimer = null;
      if (holdsPast(c) && !c.resuming) follow(id);
    }, GAP_GRACE_MS);
  }

  // ----- frames -----
  function onFrame(f) {
    switch (f.type) {
      case "welcome":
        state.connected = true;
        state.attempts = 0;
        $("connection").textContent = "Connected";
        send({ type: "presence", status: state.presence });
        send({ type: "watch_queue" });
        (f.conversations || []).forEach(function (c) { conversation(c.id).frame = c; });
        Object.keys(state.conversations).forEach(follow);
        // What was written while the connection was down goes out now
        // (the same client_msg_id: the server never stores it twice).
        Object.keys(state.pending).forEach(function (id) { send(state.pending[id]); });
        render();
        break;
      case "ack":
        delete state.pending[f.client_msg_id];
        break;
      case "queue":
        state.queue = f.waiting || [];
        renderQueue();
        break;
      case "conversation": {
        var c = conversation(f.id);
        var isNew = !c.frame.status;
        c.frame = f;
        if (isNew && f.assignee && f.assignee.id === ME) follow(f.id);
        render();
        break;
      }
      case "message": {
        var conv = conversation(f.conversation_id);
        if (conv.messages[f.seq]) break; // held already (resume and live overlapped)
        conv.messages[f.seq] = f;
        // lastSeq only moves over a run without holes: a resume after a
        // drop asks for everything still missing.
        while (conv.messages[conv.lastSeq + 1]) conv.lastSeq++;
        if (f.seq > conv.lastSeq + 1 && !conv.resuming) {
          // A gap. Usually this message overtook the missing one on its
          // way from another server; give it a moment to arrive, then
          // resume from the last seq held (protocol §6.5).
          watchGap(String(f.conversation_id), conv);
        }
        var fromOthers = !(f.sender && f.sender.kind === "agent" && f.sender.id === ME);
        if (fromOthers && String(f.conversation_id) !== state.selected) conv.unread++;
        if (String(f.conversation_id) === state.selected) {
          renderTranscript();
          send({ type: "read", conversation_id: state.selected, seq: conv.lastSeq });
        }
        renderMine();
        break;
      }
      case "resumed": {
        var resumed = conversation(f.conversation_id);
        resumed.resuming = false;
        // Everything up to last_seq has been sent: what is still missing
        // below it was lost on the way, so ask again; a hole above it is a
        // live message that overtook another (protocol §6.4), worth another
        // wait only if this resume got somewhere (a hole the server cannot
        // fill, e.g. after a database restore, must not resume forever; the
        // next live message looks again).
        if (resumed.lastSeq < f.last_seq) follow(f.conversation_id);
        else if (holdsPast(resumed) && resumed.lastSeq > resumed.resumedFrom) {
          watchGap(String(f.conversation_id), resumed);
        }
        break;
      }
      case "resume_required":
        follow(f.conversation_id);
        break;
      case "typing":
        if (String(f.conversation_id) === state.selected && f.sender && f.sender.id !== ME) {
          $("typing").textContent = (f.sender.name || "Someone") + " is typing…";
          clearTimeout(state.typingTimer);
          state.typingTimer = setTimeout(function () { $("typing").textContent = ""; }, 4000);
        }
        break;
      case "error":
        $("connection").textContent = f.message;
        break;
    }
  }

  // ----- rendering -----
  function render() { renderQueue(); renderMine(); renderPane(); }

  // Whether a conversation's site is the one the agent chose to see.
  function shown(site) { return !state.site || (site && String(site.id) === state.site); }
  function siteName(site) { return site && site.name ? " · " + site.name : ""; }

  function renderQueue() {
    var list = $("queue");
    list.textContent = "";
    var waiting = state.queue.filter(function (q) { return shown(q.site); });
    waiting.forEach(function (q) {
      list.appendChild(el("li", {}, [el("button", { type: "button", class: "conv", onclick: function () {
        send({ type: "claim", conversation_id: q.conversation_id });
        select(q.conversation_id);
      } }, [
        el("strong", { text: q.customer || "Visitor" }),
        el("span", { class: "hint", text: (q.ticket_number ? " #" + q.ticket_number : "") + siteName(q.site) + " · waiting since " + clock(q.waiting_since) }),
        el("span", { class: "preview", text: q.preview || "" })
      ])]));
    });
    $("queue-count").textContent = String(waiting.length);
    $("queue-empty").hidden = waiting.length > 0;
    others("queue-others", state.queue.length - waiting.length, " more waiting on other sites.");
  }

  // The agent's live conversations: on the chosen site, or (`all`) on any.
  function mine(all) {
    return Object.keys(state.conversations).map(function (id) { return state.conversations[id]; })
      .filter(function (c) {
        return c.frame.status === "live" && c.frame.assignee && c.frame.assignee.id === ME && (all || shown(c.frame.site));
      });
  }

  // What the site filter hides is counted, never silently dropped: a chat
  // of yours on another site still needs you.
  function others(id, n, text) {
    $(id).hidden = n === 0;
    $(id).textContent = n ? n + text : "";
  }

  function renderMine() {
    var list = $("mine");
    list.textContent = "";
    var items = mine();
    items.forEach(function (c) {
      var f = c.frame;
      list.appendChild(el("li", {}, [el("button", { type: "button",
        class: "conv" + (String(f.id) === state.selected ? " selected" : ""),
        "aria-current": String(f.id) === state.selected ? "true" : "false",
        onclick: function () { select(f.id); } }, [
        el("strong", { text: (f.customer && f.customer.name) || "Visitor" }),
        el("span", { class: "hint", text: (f.ticket_number ? " #" + f.ticket_number : "") + siteName(f.site) }),
        c.unread ? el("span", { class: "count", "aria-label": c.unread + " unread", text: String(c.unread) }) : null
      ])]));
    });
    $("mine-empty").hidden = items.length > 0;
    others("mine-others", mine(true).length - items.length, " more of yours on other sites.");
  }

  function select(id) {
    state.selected = String(id);
    var c = conversation(id);
    c.unread = 0;
    if (!c.lastSeq) follow(id);
    render();
    $("message").focus();
  }

  function renderPane() {
    var pane = $("pane");
    if (!state.selected) { pane.hidden = true; return; }
    pane.hidden = false;
    var f = conversation(state.selected).frame;
    $("pane-title").textContent = ((f.customer && f.customer.name) || "Visitor") +
      (f.ticket_number ? " · #" + f.ticket_number : "") + siteName(f.site) + " · " + (f.status || "");
    var customer = $("pane-customer");
    customer.textContent = "";
    if (f.customer && f.customer.email) {
      customer.appendChild(document.createTextNode(f.customer.email + " "));
      if (!f.customer.verified) {
        customer.appendChild(el("span", { class: "badge unverified", title: "Typed by the visitor, not proven", text: "unverified" }));
      }
      customer.appendChild(document.createTextNode(" · "));
      customer.appendChild(el("a", { href: "/console?q=" + encodeURIComponent(f.customer.email), text: "past tickets" }));
    }
    if (f.customer && f.customer.contact_id) {
      if (customer.firstChild) customer.appendChild(document.createTextNode(" · "));
      customer.appendChild(el("a", { href: "/console/contacts/" + encodeURIComponent(f.customer.contact_id), text: "profile" }));
    }
    var mineNow = f.assignee && f.assignee.id === ME;
    $("claim").hidden = f.status !== "waiting";
    $("resolve").hidden = !(f.status === "live" || f.status === "waiting");
    $("transfer-to").hidden = !mineNow;
    renderTranscript();
  }

  function renderTranscript() {
    var c = conversation(state.selected);
    var list = $("transcript");
    list.textContent = "";
    Object.keys(c.messages).map(Number).sort(function (a, b) { return a - b; }).forEach(function (seq) {
      var m = c.messages[seq];
      var kind = m.private ? "message-note" : m.sender.kind === "customer" ? "message-customer" : "message-staff";
      list.appendChild(el("li", { class: "message " + kind }, [
        el("p", { class: "meta" }, [el("strong", { text: m.sender.name || m.sender.kind }),
          el("span", { text: (m.private ? " · private note" : "") + " · " + clock(m.at) })]),
        m.body ? el("div", { class: "body", text: m.body }) : null,
        m.attachment ? fileLink(m.attachment) : null,
        // What the bot offered the customer: text here, the customer clicks.
        m.options && m.options.length ? el("p", { class: "offered", text: "Offered: " + m.options.join(" · ") }) : null
      ]));
    });
    list.scrollTop = list.scrollHeight;
  }

  // A message's file: images as a thumbnail, anything else as a download
  // link. Same origin: the session cookie authorizes every read.
  function fileLink(a) {
    var box = el("div", { class: "attachment" });
    if (a.image) {
      box.appendChild(el("a", { href: a.url, target: "_blank", rel: "noopener" },
        [el("img", { class: "thumb", src: a.url, alt: a.name, loading: "lazy" })]));
    }
    box.appendChild(el("a", { class: "file", href: a.url, download: a.name }, [
      el("span", { class: "name", text: a.name }), el("span", { class: "size", text: " (" + size(a.size) + ")" })
    ]));
    return box;
  }
  function size(bytes) {
    if (bytes < 1024) return bytes + " B";
    if (bytes < 1048576) return Math.round(bytes / 1024) + " KB";
    return (bytes / 1048576).toFixed(1) + " MB";
  }

  // XMLHttpRequest for its upload progress; the page's CSRF token goes in a
  // header. Once stored, the file goes out as a reply or a note (whichever
  // is selected), with whatever is written in the box.
  function upload(file) {
    if (!state.selected) return;
    var status = $("upload-status");
    var conversationId = state.selected;
    var xhr = new XMLHttpRequest();
    xhr.open("POST", "/api/v1/conversations/" + encodeURIComponent(conversationId) +
      "/attachments?name=" + encodeURIComponent(file.name));
    xhr.setRequestHeader("X-CSRF-Token", root.getAttribute("data-csrf"));
    xhr.upload.onprogress = function (e) {
      if (e.lengthComputable) status.textContent = "Uploading " + file.name + ": " + Math.round(100 * e.loaded / e.total) + "%";
    };
    xhr.onerror = function () { status.textContent = "Upload failed: check the connection and try again."; };
    xhr.onload = function () {
      var reply = {};
      try { reply = JSON.parse(xhr.responseText); } catch (e) { /* not JSON */ }
      if (xhr.status !== 201) {
        status.textContent = "Not attached: " + ((reply.error && reply.error.message) || "the upload failed (" + xhr.status + ")");
        return;
      }
      status.textContent = "";
      var box = $("message");
      var note = document.querySelector('input[name="mode"]:checked').value === "note";
      var frame = { type: note ? "note" : "send", conversation_id: conversationId, client_msg_id: uid(),
        body: box.value.trim(), attachment_id: reply.id };
      box.value = "";
      state.pending[frame.client_msg_id] = frame;
      send(frame);
    };
    xhr.send(file);
  }

  // ----- actions -----
  $("attach").addEventListener("click", function () { $("file").click(); });
  $("file").addEventListener("change", function (e) {
    Array.prototype.forEach.call(e.target.files, upload);
    e.target.value = "";
  });
  $("pane").addEventListener("dragover", function (e) { e.preventDefault(); $("pane").classList.add("dropping"); });
  $("pane").addEventListener("dragleave", function () { $("pane").classList.remove("dropping"); });
  $("pane").addEventListener("drop", function (e) {
    e.preventDefault();
    $("pane").classList.remove("dropping");
    Array.prototype.forEach.call((e.dataTransfer && e.dataTransfer.files) || [], upload);
  });
  $("presence").addEventListener("change", function (e) {
    state.presence = e.target.value;
    localStorage.setItem("careline:presence", state.presence);
    send({ type: "presence", status: state.presence });
  });
  $("site-filter").addEventListener("change", function (e) {
    state.site = e.target.value;
    // The choice stays in the address, so a reload keeps it.
    history.replaceState(null, "", state.site ? "?site=" + encodeURIComponent(state.site) : location.pathname);
    render();
  });
  $("claim").addEventListener("click", function () { send({ type: "claim", conversation_id: state.selected }); });
  $("resolve").addEventListener("click", function () { send({ type: "resolve", conversation_id: state.selected }); });
  $("transfer-to").addEventListener("change", function (e) {
    if (!e.target.value) return;
    send({ type: "transfer", conversation_id: state.selected, agent_id: e.target.value });
    e.target.value = "";
  });
  $("canned").addEventListener("change", function (e) {
    if (!e.target.value) return;
    var box = $("message");
    box.value = (box.value ? box.value + "\n" : "") + e.target.value;
    e.target.value = "";
    box.focus();
  });
  $("message").addEventListener("keydown", function (e) {
    if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); submit(); }
  });
  $("message").addEventListener("input", function () {
    var now = Date.now();
    if (state.selected && now - state.lastTyping > 3000) {
      state.lastTyping = now;
      send({ type: "typing", conversation_id: state.selected });
    }
  });
  $("composer").addEventListener("submit", function (e) { e.preventDefault(); submit(); });

  function submit() {
    var box = $("message");
    var body = box.value.trim();
    if (!body || !state.selected) return;
    var note = document.querySelector('input[name="mode"]:checked').value === "note";
    var frame = { type: note ? "note" : "send", conversation_id: state.selected, client_msg_id: uid(), body: body };
    state.pending[frame.client_msg_id] = frame;
    send(frame);
    box.value = "";
  }

  // ----- connection -----
  function connect() {
    var socket = new WebSocket(location.origin.replace(/^http/, "ws") + "/ws");
    state.socket = socket;
    socket.onopen = function () { socket.send(JSON.stringify({ type: "hello" })); };
    socket.onmessage = function (e) { try { onFrame(JSON.parse(e.data)); } catch (err) { /* skip */ } };
    socket.onclose = function (e) {
      state.connected = false;
      Object.keys(state.conversations).forEach(function (id) { state.conversations[id].resuming = false; });
      if (e.code === 4401) { location.href = "/login?next=/console/chat"; return; }
      $("connection").textContent = "Reconnecting…";
      var delay = Math.min(30000, 500 * Math.pow(2, state.attempts++)) * (0.5 + Math.random());
      setTimeout(connect, delay);
    };
  }
  connect();
})();
