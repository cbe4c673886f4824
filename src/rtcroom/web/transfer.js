// File transfer over data channels: one channel per transfer, chunked, with
// flow control and a SHA-256 check. The format is in docs/protocol.md
// ("File transfer"); Python peers speak it too.
import { FILE_CHANNEL } from "./rtcroom.js";
import { Sha256 } from "./sha256.js";

export { FILE_CHANNEL };

/** Largest chunk we send; smaller if the other side's SCTP max-message-size says so. */
export const CHUNK_SIZE = 128 * 1024;
/** How much is read from the file at once (never the whole file). */
const SLICE_SIZE = 1024 * 1024;
/**
 * What a receiver holds in the page before handing it to the browser's blob
 * store (which keeps large files on disk): a 1 GB file never sits in the
 * page's memory on either side.
 */
const FOLD_SIZE = 16 * 1024 * 1024;
/** Stop sending above this many buffered bytes, resume below the low mark. */
const HIGH_WATER = 4 * 1024 * 1024;
const LOW_WATER = 1024 * 1024;

/**
 * @typedef {{type: "file", id: string, name: string, size: number, mime: string}} FileHeader
 * @typedef {{type: "end", sha256: string}} FileEnd
 * @typedef {{type: "received", sha256: string}} FileReceived
 * @typedef {{type: "cancel", reason: string}} FileCancel
 * @typedef {"sending" | "receiving" | "done" | "cancelled" | "failed"} TransferState
 * @typedef {import("./rtcroom.js").RemotePeer} RemotePeer
 */

/**
 * One file on its way, in either direction.
 * Events: "progress" (bytes changed), "end" (state is done, cancelled or failed).
 */
export class Transfer extends EventTarget {
  /**
   * @param {{peer: RemotePeer, channel: RTCDataChannel, direction: "send" | "receive",
   *          id: string, name: string, size: number, mime: string}} options
   */
  constructor({ peer, channel, direction, id, name, size, mime }) {
    super();
    this.peer = peer;
    this.channel = channel;
    this.direction = direction;
    this.id = id;
    this.name = name;
    this.size = size;
    this.mime = mime;
    /** @type {TransferState} */
    this.state = direction === "send" ? "sending" : "receiving";
    /** bytes delivered so far (sent and drained, or received) */
    this.bytes = 0;
    this.startedAt = performance.now();
    this.endedAt = 0;
    /** lowercase hex SHA-256 of the whole file, once known */
    this.sha256 = "";
    /** object URL of the received file, once verified */
    this.url = "";
    this.reason = "";
  }

  get active() {
    return this.state === "sending" || this.state === "receiving";
  }

  /** Average speed in bytes per second since the start. */
  get speed() {
    const end = this.endedAt || performance.now();
    const seconds = (end - this.startedAt) / 1000;
    return seconds > 0 ? this.bytes / seconds : 0;
  }

  /**
   * Stop the transfer; the other side sees it cancelled. Idempotent.
   * @param {string} [reason]
   */
  cancel(reason = "cancelled") {
    if (!this.active) return;
    if (this.channel.readyState === "open") {
      /** @type {FileCancel} */
      const message = { type: "cancel", reason };
      this.channel.send(JSON.stringify(message));
    }
    this.finish("cancelled", reason);
    this.channel.close();
  }

  /**
   * @param {TransferState} state
   * @param {string} [reason]
   */
  finish(state, reason = "") {
    if (!this.active) return;
    this.state = state;
    this.reason = reason;
    this.endedAt = performance.now();
    this.dispatchEvent(new Event("progress"));
    this.dispatchEvent(new Event("end"));
  }

  /** Tell listeners about progress, at most every 100 ms, while the transfer runs. */
  progress() {
    if (!this.active) return;
    const now = performance.now();
    if (now - this.#reported < 100) return;
    this.#reported = now;
    this.dispatchEvent(new Event("progress"));
  }

  #reported = 0;
}

/** @param {RTCDataChannel} channel */
function opened(channel) {
  return new Promise((resolve, reject) => {
    if (channel.readyState === "open") return resolve(undefined);
    channel.addEventListener("open", () => resolve(undefined), { once: true });
    channel.addEventListener("close", () => reject(new Error("channel closed")), { once: true });
  });
}

/**
 * Send `file` to `peer`. Returns at once; follow the Transfer's events.
 * @param {RemotePeer} peer
 * @param {File} file
 * @returns {Transfer}
 */
export function sendFile(peer, file) {
  const channel = peer.pc.createDataChannel(FILE_CHANNEL.label, {
    ordered: true,
    protocol: FILE_CHANNEL.protocol,
  });
  channel.binaryType = "arraybuffer";
  channel.bufferedAmountLowThreshold = LOW_WATER;
  const transfer = new Transfer({
    peer,
    channel,
    direction: "send",
    id: crypto.randomUUID(),
    name: file.name,
    size: file.size,
    mime: file.type || "application/octet-stream",
  });
  channel.onmessage = ({ data }) => {
    const message = parseControl(data);
    if (message?.type === "received") {
      if (message.sha256 === transfer.sha256) {
        transfer.bytes = transfer.size; // all of it arrived: the receiver says so
        transfer.finish("done");
      } else {
        transfer.finish("failed", "the receiver's checksum differs");
      }
      channel.close();
    } else if (message?.type === "cancel") {
      transfer.finish("cancelled", message.reason || "cancelled by the receiver");
      channel.close();
    }
  };
  channel.onclose = () => transfer.finish("cancelled", "the connection closed");
  pump(transfer, file).catch((err) => transfer.finish("failed", String(err)));
  return transfer;
}

/**
 * @param {Transfer} transfer
 * @param {File} file
 */
async function pump(transfer, file) {
  const { channel, peer } = transfer;
  const read = (/** @type {number} */ at) => file.slice(at, at + SLICE_SIZE).arrayBuffer();
  // One slice is read ahead while the last one is hashed and queued; the
  // first one while the channel opens.
  let next = read(0);
  next.catch(() => {}); // awaited below, unless the channel never opens
  await opened(channel);
  const limit = peer.pc.sctp?.maxMessageSize;
  const chunkSize = limit && limit > 0 ? Math.min(CHUNK_SIZE, limit) : CHUNK_SIZE;
  /** @type {FileHeader} */
  const header = { type: "file", id: transfer.id, name: transfer.name, size: transfer.size, mime: transfer.mime };
  channel.send(JSON.stringify(header));
  const hash = new Sha256();
  let sent = 0;
  const drained = () =>
    new Promise((resolve) => {
      channel.addEventListener("bufferedamountlow", resolve, { once: true });
      channel.addEventListener("close", resolve, { once: true });
    });
  // Progress is what left the buffer, until the transfer ends (the receiver's
  // acknowledgement, a cancel, or a failure: pump's rejection ends it too).
  const timer = setInterval(() => {
    transfer.bytes = Math.max(0, sent - channel.bufferedAmount);
    transfer.progress();
  }, 250);
  transfer.addEventListener("end", () => clearInterval(timer), { once: true });
  while (sent < transfer.size) {
    const slice = new Uint8Array(await next);
    if (slice.length === 0) throw new Error("the file got shorter while being sent");
    if (sent + slice.length < transfer.size) {
      next = read(sent + slice.length);
      next.catch(() => {}); // awaited above, unless the transfer stops first
    }
    hash.update(slice);
    for (let offset = 0; offset < slice.length; offset += chunkSize) {
      if (channel.bufferedAmount > HIGH_WATER) await drained();
      if (!transfer.active || channel.readyState !== "open") return;
      channel.send(slice.subarray(offset, offset + chunkSize));
    }
    sent += slice.length;
  }
  transfer.sha256 = hash.hex();
  /** @type {FileEnd} */
  const end = { type: "end", sha256: transfer.sha256 };
  channel.send(JSON.stringify(end));
}

/**
 * @param {unknown} data
 * @returns {FileHeader | FileEnd | FileReceived | FileCancel | null}
 */
function parseControl(data) {
  if (typeof data !== "string") return null;
  try {
    const message = JSON.parse(data);
    return message && typeof message === "object" && typeof message.type === "string" ? message : null;
  } catch {
    return null;
  }
}

/**
 * Take the file transfers that peers open with us: calls `onTransfer` with
 * each incoming Transfer as soon as its header arrives.
 * @param {import("./rtcroom.js").RoomClient} client
 * @param {(transfer: Transfer) => void} onTransfer
 */
export function receiveFiles(client, onTransfer) {
  client.addEventListener("datachannel", (event) => {
    const { peer, channel } = /** @type {CustomEvent} */ (event).detail;
    receiveFile(peer, channel, onTransfer);
  });
}

/**
 * Take one channel a peer opened with us, if it is a file transfer's. For a
 * page that loads this module on demand: `held` are the message events that
 * arrived on the channel before, in order (they are handled first). Any
 * other channel is left alone.
 * @param {RemotePeer} peer
 * @param {RTCDataChannel} channel
 * @param {(transfer: Transfer) => void} onTransfer
 * @param {MessageEvent[]} [held]
 */
export function receiveFile(peer, channel, onTransfer, held = []) {
  if (channel.label !== FILE_CHANNEL.label) return;
  const handle = receive(peer, channel, onTransfer);
  for (const message of held) handle(message);
  if (channel.readyState === "closed") channel.onclose?.(new Event("close"));
}

/**
 * @param {RemotePeer} peer
 * @param {RTCDataChannel} channel
 * @param {(transfer: Transfer) => void} onTransfer
 * @returns {(message: MessageEvent) => void} the channel's message handler
 */
function receive(peer, channel, onTransfer) {
  channel.binaryType = "arraybuffer";
  /** @type {Transfer | null} */
  let transfer = null;
  /** @type {ArrayBuffer[]} what arrived since the last fold */
  let parts = [];
  let partsSize = 0;
  /** @type {Blob[]} what arrived before, in the browser's blob store */
  let folded = [];
  const drop = () => {
    parts = [];
    folded = [];
    partsSize = 0;
  };
  const hash = new Sha256();
  /** @param {string} reason */
  const refuse = (reason) => {
    if (transfer) transfer.cancel(reason);
    else channel.close();
  };
  /** @param {MessageEvent} message */
  const handle = ({ data }) => {
    if (data instanceof ArrayBuffer) {
      if (!transfer || !transfer.active) return;
      if (transfer.bytes + data.byteLength > transfer.size) return refuse("more data than announced");
      parts.push(data);
      partsSize += data.byteLength;
      if (partsSize >= FOLD_SIZE) {
        folded.push(new Blob(parts));
        parts = [];
        partsSize = 0;
      }
      hash.update(new Uint8Array(data));
      transfer.bytes += data.byteLength;
      transfer.progress();
      return;
    }
    const message = parseControl(data);
    if (message?.type === "file" && !transfer) {
      const size = Number(message.size);
      if (!Number.isSafeInteger(size) || size < 0 || typeof message.name !== "string") {
        return refuse("bad file header");
      }
      transfer = new Transfer({
        peer,
        channel,
        direction: "receive",
        id: String(message.id),
        name: message.name.replace(/[\\/]/g, "_").slice(0, 255) || "file",
        size,
        mime: typeof message.mime === "string" ? message.mime : "application/octet-stream",
      });
      onTransfer(transfer);
    } else if (message?.type === "end" && transfer?.active) {
      const digest = hash.hex();
      if (transfer.bytes !== transfer.size || digest !== message.sha256) {
        return refuse(transfer.bytes !== transfer.size ? "file is incomplete" : "checksum mismatch");
      }
      transfer.sha256 = digest;
      transfer.url = URL.createObjectURL(new Blob([...folded, ...parts], { type: transfer.mime }));
      drop();
      /** @type {FileReceived} */
      const received = { type: "received", sha256: digest };
      channel.send(JSON.stringify(received));
      transfer.finish("done");
    } else if (message?.type === "cancel" && transfer?.active) {
      drop();
      transfer.finish("cancelled", message.reason || "cancelled by the sender");
      channel.close();
    }
  };
  channel.onmessage = handle;
  channel.onclose = () => {
    drop();
    transfer?.finish("cancelled", "the connection closed");
  };
  return handle;
}
