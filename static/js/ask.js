// Streams an answer from /ask/stream/ (server-sent events over a POST) and
// renders it with DOM text nodes only: nothing from the model or the
// documents is ever parsed as HTML.
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

  function renderAnswer(container, text, citations) {
    const urls = new Map((citations || []).map((c) => [String(c.n), c.url]));
    container.replaceChildren();
    for (const paragraph of text.split(/\n{2,}/)) {
      if (!paragraph.trim()) continue;
      const p = element("p");
      let last = 0;
      for (const match of paragraph.matchAll(/\[(\d{1,2})\]/g)) {
        p.append(paragraph.slice(last, match.index));
        const url = urls.get(match[1]);
        if (url) {
          const a = element("a", "cite", match[0]);
          a.href = url;
          p.append(a);
        } else {
          p.append(match[0]);
        }
        last = match.index + match[0].length;
      }
      p.append(paragraph.slice(last));
      container.append(p);
    }
  }

  function renderSources(item, entries) {
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
            status.textContent = strings.writing;
          } else if (name === "token") {
            text += data.text;
            answer.textContent = text;
          } else if (name === "done") {
            renderAnswer(answer, data.answer, data.citations);
            renderSources(item, data.citations);
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
