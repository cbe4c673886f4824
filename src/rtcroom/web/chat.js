// The side panel: chat messages, and the place file transfers are listed (files.js).
import { $, announce, button, formatTime } from "./ui.js";

/**
 * @typedef {import("./rtcroom.js").RoomClient} RoomClient
 * @typedef {import("./rtcroom.js").ChatMessage} ChatMessage
 * @typedef {{show: (open: boolean) => void, append: (item: HTMLElement) => void, notify: () => void}} Panel
 */

/**
 * Open and close the panel, count what arrives while it is closed.
 * @returns {Panel}
 */
export function sidePanel() {
  const panel = $("chat-panel");
  const toggle = button("toggle-chat");
  const list = $("messages");
  const input = /** @type {HTMLInputElement} */ ($("chat-input"));
  const unread = $("unread");
  let unreadCount = 0;

  /** @param {boolean} open */
  const show = (open) => {
    // Closing the panel from inside it: the focus goes back to its button.
    const inside = panel.contains(document.activeElement);
    panel.hidden = !open;
    toggle.setAttribute("aria-pressed", String(open));
    document.body.classList.toggle("panel-open", open);
    if (open) {
      unreadCount = 0;
      unread.hidden = true;
      input.focus();
    } else if (inside) {
      toggle.focus();
    }
  };
  toggle.addEventListener("click", () => show(panel.hidden));
  $("chat-close").addEventListener("click", () => show(false));
  panel.addEventListener("keydown", (event) => {
    if (event.key === "Escape") {
      event.preventDefault();
      show(false);
    }
  });

  const notify = () => {
    if (!panel.hidden) return;
    unreadCount += 1;
    unread.textContent = String(unreadCount);
    unread.hidden = false;
  };

  /** @param {HTMLElement} item */
  const append = (item) => {
    const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
    list.append(item);
    if (atBottom) list.scrollTop = list.scrollHeight;
  };
  return { show, append, notify };
}

/**
 * Chat in the panel: what arrives, and what we write.
 * @param {RoomClient} client
 * @param {Panel} panel
 * @param {ChatMessage[]} arrived messages that came before this module loaded, in order
 */
export function chat(client, panel, arrived) {
  const input = /** @type {HTMLInputElement} */ ($("chat-input"));

  /** @param {ChatMessage} message */
  const addMessage = (message) => {
    const item = document.createElement("li");
    item.className = message.own ? "message own" : "message";
    const meta = document.createElement("div");
    meta.className = "meta";
    const who = document.createElement("strong");
    who.textContent = message.own ? "You" : message.name || "Guest";
    const when = document.createElement("time");
    when.dateTime = new Date(message.time).toISOString();
    when.textContent = formatTime(message.time);
    meta.append(who, " ", when);
    const text = document.createElement("p");
    text.textContent = message.text;
    item.append(meta, text);
    panel.append(item);
  };

  /** @param {ChatMessage} message */
  const receive = (message) => {
    addMessage(message);
    panel.notify();
    announce(`${message.name || "Guest"}: ${message.text.slice(0, 300)}`);
  };
  for (const message of arrived) receive(message);
  client.addEventListener("chat", (event) => receive(/** @type {CustomEvent} */ (event).detail.message));
  $("chat-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const text = input.value.trim();
    if (!text) return;
    addMessage(client.sendChat(text));
    input.value = "";
  });
}
