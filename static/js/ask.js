// Streams an answer from /ask/stream/ (server-sent events over a POST). While
// it streams, the model's text and the passages are shown as DOM text nodes;
// the finished answer is the server's sanitised rendering (answer_html, see
// inference/rendering.py), the only HTML this script inserts.
"use strict";
(() => {
  const form = document.getElementById("ask-form");
  if (!form) return;
  const list = document.getElementById("messages");
  const status = document.getElementById("ask-status");
  const strings = document.getElementById("strings").dataset;
  const csrf = form.querySelector("input[name=csrfmiddlewaretoken]").value;

  function element(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function renderSources(item, entries) {
    item.querySelector("ol.citations")?.remove();
    if (!entries || !entries.length) return;
    const ol = element("ol", "citations");
    ol.setAttribute("aria-label", strings.sources);
    for (const entry of entries) {
      const li = element("li");
      li.value = entry.n || entry.number;
      const a = element("a", "", entry.title);
      a.href = entry.url;
      li.append(a);
      if (entry.page) li.append(` · ${strings.page} ${entry.page}`);
      ol.append(li);
    }
    item.append(ol);
  }

  function parseEvents(buffer, handle) {
    let index;
    while ((index = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, index);
      buffer = buffer.slice(index + 2);
      let name = "message";
      let data = "";
      for (const line of block.split("\n")) {
        if (line.startsWith("event: ")) name = line.slice(7);
        else if (line.startsWith("data: ")) data += line.slice(6);
      }
      if (data) handle(name, JSON.parse(data));
    }
    return buffer;
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const question = form.question.value.trim();
    if (!question) return;
    const body = new FormData(form);
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    status.textContent = strings.thinking;
    const asked = element("li", "msg msg-user");
    asked.append(element("p", "", question));
    const item = element("li", "msg msg-assistant");
    const answer = element("div", "answer");
    item.append(answer);
    list.append(asked, item);
    form.question.value = "";
    let text = "";
    let passages = [];
    try {
      const response = await fetch(form.action, {
        method: "POST",
        body,
        headers: { "X-CSRFToken": csrf, Accept: "text/event-stream" },
        credentials: "same-origin",
      });
      if (!response.ok) {
        throw new Error(await response.text());
      }
      const reader = response.body.getReader();
      const decoder = new TextDecoder();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer = parseEvents(buffer + decoder.decode(value, { stream: true }), (name, data) => {
          if (name === "meta") {
            passages = data.passages || [];
            form.conversation.value = data.conversation_id;
            history.replaceState(null, "", `/ask/${data.conversation_id}/`);
            // The passages found show at once; the answer follows.
            renderSources(item, passages);
            status.textContent = passages.length ? strings.writing : "";
          } else if (name === "queue") {
            // Waiting for the model: the server says how many are ahead.
            status.textContent = data.message;
          } else if (name === "token") {
            if (!text) status.textContent = strings.writing;
            text += data.text;
            answer.textContent = text;
          } else if (name === "done") {
            answer.innerHTML = data.answer_html;
            renderSources(item, data.citations);
            item.classList.add("answered");
            if (data.from_cache) item.append(element("p", "muted", strings.cached));
            status.textContent = "";
          } else if (name === "error") {
            item.append(element("p", "error", data.message));
            renderSources(item, passages);
            status.textContent = strings.failed;
          }
        });
      }
    } catch (error) {
      item.append(element("p", "error", `${strings.failed} ${error.message}`));
      status.textContent = strings.failed;
    } finally {
      button.disabled = false;
      form.question.focus();
    }
  });
})();
