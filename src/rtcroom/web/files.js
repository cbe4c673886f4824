// File transfers in the side panel: sending (picker, drag and drop), receiving, progress.
import { $, announce, describe, formatBytes, loadTransfer, select, showNotice } from "./ui.js";

/**
 * @typedef {import("./rtcroom.js").RoomClient} RoomClient
 * @typedef {import("./rtcroom.js").RemotePeer} RemotePeer
 * @typedef {import("./transfer.js").Transfer} Transfer
 * @typedef {import("./chat.js").Panel} Panel
 * @typedef {{peer: RemotePeer, channel: RTCDataChannel, held: MessageEvent[]}} IncomingFile
 */

/**
 * A transfer's line in the panel: progress, speed, then a download link or why it failed.
 * @param {Panel} panel
 * @param {Transfer} transfer
 */
function showTransfer(panel, transfer) {
  const item = document.createElement("li");
  item.className = `transfer ${transfer.direction}`;
  item.dataset.transferId = transfer.id;
  item.dataset.peerId = transfer.peer.id;
  const title = document.createElement("div");
  title.className = "meta";
  title.textContent =
    transfer.direction === "send"
      ? `Sending ${transfer.name} to ${transfer.peer.name || "Guest"}`
      : `${transfer.peer.name || "Guest"} is sending ${transfer.name}`;
  const bar = document.createElement("progress");
  bar.max = Math.max(1, transfer.size);
  bar.value = 0;
  const line = document.createElement("div");
  line.className = "transfer-status";
  const cancel = document.createElement("button");
  cancel.type = "button";
  cancel.className = "cancel";
  cancel.textContent = "Cancel";
  cancel.title = `Stop this transfer`;
  cancel.addEventListener("click", () => transfer.cancel("cancelled by the user"));
  item.append(title, bar, line, cancel);
  panel.append(item);
  // Said once when it starts and once when it ends; the progress only shows.
  const who = transfer.peer.name || "Guest";
  if (transfer.direction === "receive") announce(`${who} is sending ${transfer.name}, ${formatBytes(transfer.size)}.`);
  let ended = false;
  /** The cancel button goes at the end: a keyboard user on it lands on the next thing to do. */
  const removeCancel = (/** @type {HTMLElement | null} */ next) => {
    const focused = document.activeElement === cancel;
    cancel.remove();
    if (focused) (next ?? /** @type {HTMLElement} */ ($("chat-input"))).focus();
  };
  const render = () => {
    bar.value = transfer.bytes;
    const percent = transfer.size ? Math.floor((transfer.bytes / transfer.size) * 100) : 100;
    item.dataset.state = transfer.state;
    if (transfer.active) {
      line.textContent = `${percent}% · ${formatBytes(transfer.bytes)} of ${formatBytes(transfer.size)} · ${formatBytes(transfer.speed)}/s`;
    } else if (transfer.state === "done") {
      title.textContent =
        transfer.direction === "send" ? `Sent ${transfer.name} to ${who}` : `${who} sent ${transfer.name}`;
      line.textContent = `${formatBytes(transfer.size)} · ${formatBytes(transfer.speed)}/s · SHA-256 verified`;
      let link = item.querySelector("a");
      if (transfer.url && !link) {
        link = document.createElement("a");
        link.href = transfer.url;
        link.download = transfer.name;
        link.className = "button download";
        link.textContent = `Download ${transfer.name}`;
        item.append(link);
      }
      removeCancel(link);
    } else {
      line.textContent = transfer.state === "failed" ? `Failed: ${transfer.reason}` : `Cancelled: ${transfer.reason}`;
      removeCancel(null);
    }
    if (!transfer.active && !ended) {
      ended = true;
      const verb = transfer.direction === "send" ? `sent to ${who}` : `from ${who} received`;
      announce(
        transfer.state === "done"
          ? `${transfer.name} ${verb}.`
          : `${transfer.name}: ${transfer.state === "failed" ? "failed" : "cancelled"}, ${transfer.reason}.`,
      );
    }
  };
  transfer.addEventListener("progress", render);
  render();
  if (transfer.direction === "receive") panel.notify();
}

/**
 * Receive the files the others send (`incoming`: the channels of those that
 * started before this module loaded, then each new one), and send ours.
 * @param {RoomClient} client
 * @param {Panel} panel
 * @param {{incoming: IncomingFile[], listen: (take: (file: IncomingFile) => void) => void}} files
 */
export function fileTransfers(client, panel, { incoming, listen }) {
  const recipients = select("file-to");
  const fileInput = /** @type {HTMLInputElement} */ ($("file-input"));
  /** @param {Transfer} transfer */
  const addTransfer = (transfer) => showTransfer(panel, transfer);

  /** @param {IncomingFile} file */
  const receive = ({ peer, channel, held }) =>
    loadTransfer().then(
      ({ receiveFile }) => receiveFile(peer, channel, addTransfer, held),
      () => channel.close(),
    );
  for (const file of incoming) receive(file);
  listen(receive);

  /** @param {File} file */
  const send = async (file) => {
    const target = recipients.value;
    const peers = target ? [client.peers.get(target)] : [...client.peers.values()];
    if (peers.length === 0 || !peers[0]) {
      showNotice("There is no one to send the file to yet.", "info");
      return;
    }
    try {
      const { sendFile } = await loadTransfer();
      for (const peer of peers) if (peer) addTransfer(sendFile(peer, file));
      panel.show(true);
    } catch (err) {
      showNotice(`File transfer is not available: ${describe(err)}`);
    }
  };
  fileInput.addEventListener("change", () => {
    for (const file of fileInput.files ?? []) send(file);
    fileInput.value = "";
  });
  const hint = $("drop-hint");
  document.addEventListener("dragover", (event) => {
    if (!event.dataTransfer?.types.includes("Files")) return;
    event.preventDefault();
    hint.hidden = false;
  });
  document.addEventListener("dragleave", (event) => {
    if (!event.relatedTarget) hint.hidden = true;
  });
  document.addEventListener("drop", (event) => {
    event.preventDefault();
    hint.hidden = true;
    for (const file of event.dataTransfer?.files ?? []) send(file);
  });

  // Who a file can go to: the peers there now, then those who come and go.
  /** @param {RemotePeer} peer */
  const addRecipient = (peer) => {
    const option = document.createElement("option");
    option.value = peer.id;
    option.textContent = peer.name || "Guest";
    recipients.append(option);
  };
  for (const peer of client.peers.values()) addRecipient(peer);
  client.addEventListener("peerjoined", (event) => addRecipient(/** @type {CustomEvent} */ (event).detail.peer));
  client.addEventListener("peerleft", (event) => {
    const { peer } = /** @type {CustomEvent} */ (event).detail;
    recipients.querySelector(`option[value="${CSS.escape(peer.id)}"]`)?.remove();
  });
}
