// The browser's two connections with the SFU, in a room served by it
// (docs/protocol.md, "SFU rooms"): our camera, microphone and screens go up
// once, on a sendonly connection (our offer, its answer), the camera in three
// simulcast layers; everyone else comes down on one other connection (the
// SFU's offers, our answers). What arrives is handed to the RemotePeer whose
// it is, so that the page sees the same "track" and "streamadded" events as
// in a mesh.

/**
 * @typedef {import("./rtcroom.js").RoomClient} RoomClient
 * @typedef {{mid: string, kind: string, peer: string, source?: string, label?: string, simulcast?: boolean}} SfuStream
 * @typedef {{type: "subscription", sdp: string, streams: SfuStream[]}} SubscriptionMessage
 */

/**
 * The camera's simulcast layers, highest first (as Janus expects them, rid
 * order "hml"); the SFU forwards one of them to each subscriber (`layer`):
 * 2 is "h", 0 is "l".
 * @type {RTCRtpEncodingParameters[]}
 */
export const SIMULCAST = [
  { rid: "h", maxBitrate: 1_200_000 },
  { rid: "m", maxBitrate: 400_000, scaleResolutionDownBy: 2 },
  { rid: "l", maxBitrate: 120_000, scaleResolutionDownBy: 4 },
];

/**
 * The layer for a tile `width` CSS pixels wide: the smallest that fills it
 * (with the camera's 640 or 1280 pixels, "l" is a quarter, "m" a half).
 * @param {number} width
 * @param {number} devicePixelRatio
 */
export function layerFor(width, devicePixelRatio = 1) {
  const pixels = width * devicePixelRatio;
  return pixels <= 240 ? 0 : pixels <= 560 ? 1 : 2;
}

export class SfuSession {
  /** @param {RoomClient} client */
  constructor(client) {
    this.client = client;
    /** @type {RTCPeerConnection | null} what we publish */
    this.publisher = null;
    /** @type {RTCPeerConnection | null} what we receive, from everyone */
    this.subscriber = null;
    /** @type {Map<string, SfuStream>} the subscription's streams, by mid */
    this.streams = new Map();
    /** @type {Map<string, number>} the layer asked for, by mid */
    this.layers = new Map();
    /** @type {Promise<void>} the SFU's offers are answered one at a time */
    this.queue = Promise.resolve();
    /** @type {Map<MediaStream, RTCRtpTransceiver[]>} our extra streams' transceivers */
    this.extra = new Map();
  }

  /** Connect to the SFU (again, after a `mode`): publish, and ask for everyone. */
  start() {
    this.close();
    const client = this.client;
    if (client.allows("publish")) this.#publish();
    if (client.allows("subscribe")) client.send({ type: "subscribe" });
  }

  /** @returns {RTCConfiguration} */
  #configuration() {
    return { iceServers: this.client.iceServers, iceTransportPolicy: this.client.relayOnly ? "relay" : "all" };
  }

  #publish() {
    const pc = new RTCPeerConnection(this.#configuration());
    this.publisher = pc;
    const stream = this.client.localStream;
    // The slots exist from the first offer, so that a camera that starts
    // later (or is switched) slots in with replaceTrack.
    for (const kind of ["audio", "video"]) {
      const track = stream?.getTracks().find((t) => t.kind === kind) ?? null;
      pc.addTransceiver(track ?? kind, {
        direction: "sendonly",
        streams: stream ? [stream] : [],
        sendEncodings: kind === "video" ? SIMULCAST.map((e) => ({ ...e })) : undefined,
      });
    }
    for (const [extra] of this.client.published) this.#addExtra(extra);
    pc.onicecandidate = ({ candidate }) =>
      this.client.send({ type: "trickle", pc: "publish", candidate: candidate ? candidate.toJSON() : null });
    pc.onnegotiationneeded = () => this.#offer();
    pc.onconnectionstatechange = () => this.#state();
    this.#offer();
  }

  #offering = false;

  async #offer() {
    const pc = this.publisher;
    if (!pc || this.#offering || pc.signalingState !== "stable") return;
    this.#offering = true;
    try {
      await pc.setLocalDescription();
      /** @type {Record<string, string>} */
      const labels = {};
      for (const [stream, transceivers] of this.extra) {
        const label = this.client.published.get(stream) ?? "screen";
        for (const t of transceivers) if (t.mid) labels[t.mid] = label;
      }
      const sdp = pc.localDescription?.sdp;
      if (sdp) this.client.send({ type: "publish", sdp, labels });
    } catch (err) {
      this.client.reportError(err);
    } finally {
      this.#offering = false;
    }
  }

  /**
   * The SFU's answer to our publish offer.
   * @param {string} sdp
   */
  async published(sdp) {
    const pc = this.publisher;
    if (!pc || pc.signalingState !== "have-local-offer") return;
    try {
      await pc.setRemoteDescription({ type: "answer", sdp });
      // Changes made while the offer was out (a screen shared) go next:
      // the browser says so with "negotiationneeded".
    } catch (err) {
      this.client.reportError(err);
    }
  }

  /**
   * The SFU's offer for the subscribing connection (first, or an update).
   * @param {SubscriptionMessage} message
   */
  subscription(message) {
    this.queue = this.queue.then(() => this.#answer(message)).catch((err) => this.client.reportError(err));
  }

  /** @param {SubscriptionMessage} message */
  async #answer(message) {
    let pc = this.subscriber;
    if (!pc) {
      pc = new RTCPeerConnection(this.#configuration());
      this.subscriber = pc;
      pc.ontrack = ({ track, transceiver }) => this.#onTrack(track, transceiver);
      pc.onicecandidate = ({ candidate }) =>
        this.client.send({ type: "trickle", pc: "subscribe", candidate: candidate ? candidate.toJSON() : null });
      pc.onconnectionstatechange = () => this.#state();
    }
    const before = new Map(this.streams);
    this.streams = new Map(message.streams.map((s) => [s.mid, s]));
    await pc.setRemoteDescription({ type: "offer", sdp: message.sdp });
    await pc.setLocalDescription();
    const sdp = pc.localDescription?.sdp;
    if (sdp) this.client.send({ type: "answer", sdp });
    // Streams that are gone (their publisher left or stopped sharing).
    for (const [mid, stream] of before) {
      if (!this.streams.has(mid)) {
        this.layers.delete(mid);
        this.client.peers.get(stream.peer)?.sfuStreamEnded(mid, stream);
      }
    }
    // A mid reused for another stream: hand its track over.
    for (const t of pc.getTransceivers()) {
      const stream = t.mid ? this.streams.get(t.mid) : undefined;
      const old = t.mid ? before.get(t.mid) : undefined;
      if (stream && old && (old.peer !== stream.peer || old.source !== stream.source)) {
        this.client.peers.get(old.peer)?.sfuStreamEnded(/** @type {string} */ (t.mid), old);
        this.#onTrack(t.receiver.track, t);
      }
    }
  }

  /**
   * @param {MediaStreamTrack} track
   * @param {RTCRtpTransceiver} transceiver
   */
  #onTrack(track, transceiver) {
    const mid = transceiver.mid;
    const stream = mid ? this.streams.get(mid) : undefined;
    if (!stream || !mid) return;
    this.client.peers.get(stream.peer)?.sfuTrack(track, mid, stream);
  }

  /**
   * Receive `mid`'s simulcast layer `substream` (0 lowest to 2 highest), once.
   * @param {string} mid
   * @param {number} substream
   */
  requestLayer(mid, substream) {
    const stream = this.streams.get(mid);
    if (!stream || !stream.simulcast || this.layers.get(mid) === substream) return;
    this.layers.set(mid, substream);
    const track = this.subscriber?.getTransceivers().find((t) => t.mid === mid)?.receiver.track;
    if (track?.muted) {
      // Not before its media flows: the SFU would wait for a key frame of the
      // new layer before the first frame. It switches once there is one.
      track.addEventListener("unmute", () => this.#sendLayer(mid), { once: true });
    } else {
      this.#sendLayer(mid);
    }
  }

  /** @param {string} mid */
  #sendLayer(mid) {
    const substream = this.layers.get(mid);
    if (substream !== undefined && this.streams.has(mid)) this.client.send({ type: "layer", mid, substream });
  }

  /**
   * What we send changed (a camera started, or was switched).
   * @param {MediaStream | null} stream
   */
  useStream(stream) {
    const pc = this.publisher;
    if (!pc) return;
    const own = new Set([...this.extra.values()].flat());
    for (const t of pc.getTransceivers()) {
      if (own.has(t) || !t.sender) continue;
      const kind = t.receiver.track.kind;
      const track = stream?.getTracks().find((candidate) => candidate.kind === kind) ?? null;
      // (No setStreams: the SFU names the streams itself, and a new msid would renegotiate.)
      if (t.sender.track !== track) t.sender.replaceTrack(track).catch((err) => this.client.reportError(err));
    }
  }

  /** @param {MediaStream} stream */
  #addExtra(stream) {
    const pc = this.publisher;
    if (!pc || this.extra.has(stream)) return;
    this.extra.set(
      stream,
      stream.getTracks().map((track) => pc.addTransceiver(track, { direction: "sendonly", streams: [stream] })),
    );
  }

  /**
   * Publish an extra stream (a screen); renegotiates.
   * @param {MediaStream} stream
   */
  publishExtra(stream) {
    this.#addExtra(stream);
  }

  /** @param {MediaStream} stream */
  unpublishExtra(stream) {
    const transceivers = this.extra.get(stream);
    this.extra.delete(stream);
    for (const t of transceivers ?? []) if (t.currentDirection !== "stopped") t.stop();
  }

  #state() {
    this.client.dispatchEvent(
      new CustomEvent("sfustatechange", {
        detail: { publisher: this.publisher?.connectionState ?? null, subscriber: this.subscriber?.connectionState ?? null },
      }),
    );
  }

  /** Close both connections (the SFU moved, or we left). */
  close() {
    this.publisher?.close();
    this.subscriber?.close();
    this.publisher = this.subscriber = null;
    for (const [mid, stream] of this.streams) this.client.peers.get(stream.peer)?.sfuStreamEnded(mid, stream);
    this.streams.clear();
    this.layers.clear();
    this.extra.clear();
    this.queue = Promise.resolve();
  }
}
