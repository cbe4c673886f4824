// rtcroom client library: connection, protocol v1 and negotiation.
//
// No UI here (see app.js for the call page built on it). Usable from any
// page: `import { RoomClient } from "/static/rtcroom.js"`.
// The wire format is docs/protocol.md; the typedefs below mirror it.

/**
 * @typedef {{id: string, name: string}} PeerInfo
 * @typedef {{urls: string | string[], username?: string, credential?: string}} IceServer
 * @typedef {{type: "joined", id: string, room: string, peers: PeerInfo[], iceServers: IceServer[]}} JoinedMessage
 * @typedef {{type: "peer-joined", peer: PeerInfo}} PeerJoinedMessage
 * @typedef {{type: "peer-left", id: string}} PeerLeftMessage
 * @typedef {{description?: RTCSessionDescriptionInit, streams?: Record<string, string>, candidate?: RTCIceCandidateInit | null}} SignalData
 * @typedef {{type: "signal", from: string, data: SignalData}} SignalMessage
 * @typedef {{type: "broadcast", from: string, data: unknown}} BroadcastMessage
 * @typedef {"bad-message" | "unknown-type" | "not-joined" | "already-joined" | "unknown-peer" | "too-large" | "room-full"} ErrorCode
 * @typedef {{type: "error", code: ErrorCode, message: string}} ErrorMessage
 * @typedef {{type: "ice-servers", iceServers: IceServer[]}} IceServersMessage
 * @typedef {JoinedMessage | PeerJoinedMessage | PeerLeftMessage | SignalMessage | BroadcastMessage | IceServersMessage | ErrorMessage} ServerMessage
 * @typedef {{type: "join", room: string, name: string}} JoinRequest
 * @typedef {{type: "signal", to: string, data: SignalData}} SignalRequest
 * @typedef {{type: "broadcast", data: unknown}} BroadcastRequest
 * @typedef {{type: "leave"}} LeaveRequest
 * @typedef {JoinRequest | SignalRequest | BroadcastRequest | LeaveRequest} ClientMessage
 */

/** Room names the server accepts (protocol v1). */
export const ROOM_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;

/** An error the server reported, or a failure to reach it. */
export class RoomError extends Error {
  /**
   * @param {ErrorCode | "unreachable" | "closed"} code
   * @param {string} message
   */
  constructor(code, message) {
    super(message);
    this.name = "RoomError";
    this.code = code;
  }
}

/** The default signaling URL: /ws on the server that served the page. */
export function defaultServerUrl() {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${location.host}/ws`;
}

/** Label and id of the negotiated chat channel every peer connection has (docs/protocol.md). */
export const CHAT_CHANNEL = { label: "chat", id: 0 };

/**
 * @typedef {{type: "chat", text: string, time: number}} ChatWire
 * @typedef {{from: string, name: string, text: string, time: number, own: boolean}} ChatMessage
 */

/**
 * One other participant: its RTCPeerConnection and the perfect-negotiation
 * state that goes with it (W3C WebRTC 1.0, section 10.7, "Perfect negotiation").
 */
export class RemotePeer {
  /**
   * @param {RoomClient} client
   * @param {PeerInfo} info
   * @param {boolean} newcomer true when we joined after this peer: then we offer first
   */
  constructor(client, info, newcomer) {
    this.id = info.id;
    this.name = info.name;
    /** This peer's camera and microphone, gathered in one stream for a <video>. */
    this.stream = new MediaStream();
    /** @type {Map<string, MediaStream>} other streams this peer publishes (screens), by id */
    this.extraStreams = new Map();
    /** @type {Record<string, string>} labels of the remote streams, from their descriptions */
    this.remoteLabels = {};
    // Protocol v1: the peer whose id sorts lower is the polite one.
    this.polite = client.id < info.id;
    // Protocol v1: the newcomer offers; an existing peer waits for that offer.
    this.mayOffer = newcomer;
    this.makingOffer = false;
    this.ignoreOffer = false;
    /** @type {Promise<void>} incoming signals are handled one at a time, in order */
    this.queue = Promise.resolve();
    /** @type {Map<MediaStream, RTCRtpSender[]>} senders of our published extra streams */
    this.extraSenders = new Map();
    this.client = client;
    this.pc = new RTCPeerConnection({
      iceServers: client.iceServers,
      // Relay only: never reveal our addresses to the other peer (privacy).
      iceTransportPolicy: client.relayOnly ? "relay" : "all",
    });
    const pc = this.pc;
    pc.onnegotiationneeded = () => this.#negotiate();
    pc.onicecandidate = ({ candidate }) =>
      this.#send({ candidate: candidate ? candidate.toJSON() : null });
    pc.ontrack = ({ track, streams }) => this.#onTrack(track, streams[0]);
    pc.onconnectionstatechange = () =>
      client.dispatchEvent(
        new CustomEvent("connectionstatechange", { detail: { peer: this, state: pc.connectionState } }),
      );
    pc.ondatachannel = ({ channel }) =>
      client.dispatchEvent(new CustomEvent("datachannel", { detail: { peer: this, channel } }));

    // Chat: a negotiated channel that both sides create with the same id, so
    // it exists from the first offer and needs no announcement. Messages sent
    // before it opens wait in `chatQueue`.
    this.chat = pc.createDataChannel(CHAT_CHANNEL.label, { negotiated: true, id: CHAT_CHANNEL.id });
    /** @type {string[]} */
    this.chatQueue = [];
    this.chat.onopen = () => {
      for (const text of this.chatQueue.splice(0)) this.chat.send(text);
    };
    this.chat.onmessage = ({ data }) => this.#onChat(data);

    const stream = client.localStream;
    if (stream) for (const track of stream.getTracks()) pc.addTrack(track, stream);
    for (const [extra] of client.published) this.publish(extra);
    if (newcomer) {
      // The offer always has an audio and a video section. Without a track of
      // a kind we still ask to receive it, so the other side can fill it; and
      // while our own media is still starting, the section is sendrecv so that
      // the track slots in later with replaceTrack, without renegotiating.
      const kinds = new Set(stream ? stream.getTracks().map((t) => t.kind) : []);
      const direction = client.mediaPending ? "sendrecv" : "recvonly";
      for (const kind of ["audio", "video"]) {
        if (!kinds.has(kind)) pc.addTransceiver(kind, { direction });
      }
      // Offer now rather than when "negotiationneeded" gets dispatched: the
      // first offer is on the critical path to the first frame.
      this.#negotiate();
    }
  }

  /**
   * Send `stream`'s tracks (or nothing, for null) to this peer. A track takes
   * a free slot of its kind with replaceTrack (no renegotiation when the slot
   * already sends); otherwise it is added. Slots left without a track stop
   * sending. Renegotiation, when needed, follows through "negotiationneeded".
   * @param {MediaStream | null} stream
   */
  useStream(stream) {
    if (this.pc.signalingState === "closed") return;
    const tracks = stream ? stream.getTracks() : [];
    const extra = new Set([...this.extraSenders.values()].flat());
    const used = new Set();
    const slots = () =>
      this.pc.getTransceivers().filter((t) => !extra.has(t.sender) && t.currentDirection !== "stopped");
    for (const track of tracks) {
      const slot = slots().find(
        (t) =>
          !used.has(t) &&
          t.receiver.track.kind === track.kind &&
          (!t.sender.track || t.sender.track === track || t.sender.track.kind === track.kind),
      );
      if (slot) {
        used.add(slot);
        if (slot.sender.track !== track) slot.sender.replaceTrack(track).catch((err) => this.client.reportError(err));
        if (slot.direction === "recvonly" || slot.direction === "inactive") slot.direction = "sendrecv";
      } else if (stream) {
        const sender = this.pc.addTrack(track, stream);
        used.add(this.pc.getTransceivers().find((t) => t.sender === sender));
      }
    }
    for (const t of slots()) {
      if (!used.has(t) && t.sender.track) t.sender.replaceTrack(null);
      if (!used.has(t) && t.direction === "sendrecv") t.direction = "recvonly";
    }
  }

  /**
   * Send an extra stream (a screen share) to this peer; it is renegotiated.
   * @param {MediaStream} stream
   */
  publish(stream) {
    if (this.extraSenders.has(stream) || this.pc.signalingState === "closed") return;
    this.extraSenders.set(stream, stream.getTracks().map((track) => this.pc.addTrack(track, stream)));
  }

  /** @param {MediaStream} stream */
  unpublish(stream) {
    const senders = this.extraSenders.get(stream);
    this.extraSenders.delete(stream);
    if (!senders || this.pc.signalingState === "closed") return;
    for (const sender of senders) this.pc.removeTrack(sender);
  }

  /** @param {string} text */
  sendChat(text) {
    if (this.chat.readyState === "open") this.chat.send(text);
    else if (this.chat.readyState === "connecting") this.chatQueue.push(text);
  }

  /** @param {unknown} data */
  #onChat(data) {
    if (typeof data !== "string") return;
    /** @type {ChatWire} */
    let wire;
    try {
      wire = JSON.parse(data);
    } catch {
      return;
    }
    if (wire?.type !== "chat" || typeof wire.text !== "string") return;
    /** @type {ChatMessage} */
    const message = {
      from: this.id,
      name: this.name,
      text: wire.text.slice(0, 10_000),
      time: Number.isFinite(wire.time) ? wire.time : Date.now(),
      own: false,
    };
    this.client.dispatchEvent(new CustomEvent("chat", { detail: { peer: this, message } }));
  }

  /**
   * @param {MediaStreamTrack} track
   * @param {MediaStream | undefined} remote
   */
  #onTrack(track, remote) {
    const label = remote ? this.remoteLabels[remote.id] : undefined;
    const client = this.client;
    if (remote && label) {
      // An extra stream (a screen): keep the sender's stream so that it
      // updates itself as tracks are added and removed.
      if (!this.extraStreams.has(remote.id)) {
        this.extraStreams.set(remote.id, remote);
        remote.addEventListener("removetrack", () => {
          if (remote.getTracks().length === 0 && this.extraStreams.delete(remote.id)) {
            client.dispatchEvent(new CustomEvent("streamremoved", { detail: { peer: this, stream: remote, label } }));
          }
        });
        client.dispatchEvent(new CustomEvent("streamadded", { detail: { peer: this, stream: remote, label } }));
      }
      return;
    }
    for (const old of this.stream.getTracks()) if (old.kind === track.kind) this.stream.removeTrack(old);
    this.stream.addTrack(track);
    client.dispatchEvent(new CustomEvent("track", { detail: { peer: this, track } }));
  }

  /** @param {SignalData} data */
  #send(data) {
    this.client.send({ type: "signal", to: this.id, data });
  }

  /** Our labelled streams, sent along with each description (docs/protocol.md). */
  #labels() {
    /** @type {Record<string, string>} */
    const labels = {};
    for (const [stream, label] of this.client.published) if (this.extraSenders.has(stream)) labels[stream.id] = label;
    return labels;
  }

  async #negotiate() {
    if (!this.mayOffer || this.makingOffer || this.pc.signalingState === "closed") return;
    try {
      this.makingOffer = true;
      await this.pc.setLocalDescription();
      if (this.pc.localDescription) {
        this.#send({ description: this.pc.localDescription.toJSON(), streams: this.#labels() });
      }
    } catch (err) {
      this.client.reportError(err);
    } finally {
      this.makingOffer = false;
    }
  }

  /** @param {SignalData} data */
  receive(data) {
    this.queue = this.queue.then(() => this.#handle(data)).catch((err) => this.client.reportError(err));
  }

  /** @param {SignalData} data */
  async #handle(data) {
    const pc = this.pc;
    if (pc.signalingState === "closed") return;
    if (data.description) {
      const description = data.description;
      const collision =
        description.type === "offer" && (this.makingOffer || pc.signalingState !== "stable");
      this.ignoreOffer = !this.polite && collision;
      if (this.ignoreOffer) return;
      if (data.streams && typeof data.streams === "object") this.remoteLabels = data.streams;
      await pc.setRemoteDescription(description);
      if (description.type === "offer") {
        await pc.setLocalDescription();
        if (pc.localDescription) this.#send({ description: pc.localDescription.toJSON(), streams: this.#labels() });
      }
      // After the first exchange either side may renegotiate.
      this.mayOffer = true;
    } else if (data.candidate !== undefined) {
      try {
        if (data.candidate) await pc.addIceCandidate(data.candidate);
      } catch (err) {
        if (!this.ignoreOffer) throw err;
      }
    }
  }

  close() {
    this.pc.close();
    for (const track of this.stream.getTracks()) track.stop();
  }
}

/**
 * A connection to an rtcroom server and membership of one room.
 *
 * Events (all CustomEvent, data in `detail`):
 * - "joined" {id, room, peers}
 * - "peerjoined" {peer: RemotePeer}, "peerleft" {peer: RemotePeer}
 * - "track" {peer, track}: a camera or microphone track arrived (also in peer.stream)
 * - "streamadded" / "streamremoved" {peer, stream, label}: an extra stream, such as a screen
 * - "connectionstatechange" {peer, state}
 * - "chat" {peer, message: ChatMessage}: a chat message from a peer
 * - "datachannel" {peer, channel}: a peer opened a data channel (file transfers)
 * - "localstream" {stream}: what we send changed
 * - "broadcast" {from, data}
 * - "error" {error: RoomError}: a recoverable error
 * - "close" {error: RoomError | null}: the server connection ended
 */
export class RoomClient extends EventTarget {
  /**
   * `localStream` is what we send: a MediaStream, null for receive-only, or a
   * promise of either (for example getUserMedia's). With a promise, joining
   * and negotiating go on while the camera starts, and the tracks slot in
   * when it resolves.
   * `socket` is an optional WebSocket to `url` opened earlier (say by an
   * inline script while the modules load); the client adopts it.
   * @param {{room: string, name: string, url?: string,
   *          localStream?: MediaStream | null | Promise<MediaStream | null>,
   *          socket?: WebSocket | null, relayOnly?: boolean}} options
   * `relayOnly` sends all media and data through the TURN server
   * (iceTransportPolicy "relay"): the others never learn our IP addresses.
   */
  constructor({ room, name, url = defaultServerUrl(), localStream = null, socket = null, relayOnly = false }) {
    super();
    this.relayOnly = relayOnly;
    this.#socket = socket;
    this.room = room;
    this.name = name;
    this.url = url;
    /** @type {MediaStream | null} */
    this.localStream = null;
    /** true while the local stream promise is pending */
    this.mediaPending = false;
    if (localStream instanceof Promise) {
      this.mediaPending = true;
      localStream.then(
        (stream) => this.setLocalStream(stream),
        () => this.setLocalStream(null),
      );
    } else {
      this.localStream = localStream;
    }
    /** @type {string} our peer id, known once joined */
    this.id = "";
    /** @type {IceServer[]} */
    this.iceServers = [];
    /** @type {Map<string, RemotePeer>} remote peers, in join order */
    this.peers = new Map();
    /** @type {WebSocket | null} */
    this.ws = null;
    this.closed = false;
    /** @type {Map<MediaStream, string>} extra streams we publish, with their labels */
    this.published = new Map();
  }

  /**
   * Open the connection to the server. join() does it too; calling it early
   * (while the camera starts, say) saves a round trip. Idempotent.
   * @returns {Promise<void>}
   */
  connect() {
    if (this.#opened) return this.#opened;
    this.#opened = new Promise((resolve, reject) => {
      const early = this.#socket;
      const usable = early && early.url === this.url && early.readyState <= WebSocket.OPEN;
      const ws = usable ? early : new WebSocket(this.url);
      this.ws = ws;
      let open = ws.readyState === WebSocket.OPEN;
      if (open) resolve();
      ws.onopen = () => {
        open = true;
        resolve();
      };
      ws.onmessage = (event) => this.#onMessage(JSON.parse(event.data));
      ws.onclose = (event) => {
        const error = open
          ? new RoomError("closed", `The connection to the server was lost (code ${event.code}).`)
          : new RoomError("unreachable", `Cannot reach the rtcroom server at ${this.url}.`);
        if (!open) reject(error);
        this.#pending?.reject(error);
        this.#shutdown(this.closed ? null : error);
      };
    });
    return this.#opened;
  }

  /**
   * Connect if needed and join the room.
   * @returns {Promise<JoinedMessage>}
   */
  async join() {
    if (!ROOM_PATTERN.test(this.room)) {
      throw new RoomError("bad-message", "Room names use letters, digits, - and _ (at most 64).");
    }
    await this.connect();
    return new Promise((resolve, reject) => {
      this.#pending = { resolve, reject };
      this.send({ type: "join", room: this.room, name: this.name });
    });
  }

  /** @type {Promise<void> | null} */
  #opened = null;
  /** @type {WebSocket | null} */
  #socket = null;
  /** @type {{resolve: (m: JoinedMessage) => void, reject: (e: RoomError) => void} | null} */
  #pending = null;

  /** @param {ServerMessage} message */
  #onMessage(message) {
    const pending = this.#pending;
    if (pending && message.type === "error") {
      this.#pending = null;
      pending.reject(new RoomError(message.code, message.message));
      this.closed = true;
      this.#shutdown(null);
    } else if (pending && message.type === "joined") {
      this.#pending = null;
      this.#onJoined(message);
      pending.resolve(message);
    } else {
      this.#dispatch(message);
    }
  }

  /** @param {ClientMessage} message */
  send(message) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(message));
  }

  /**
   * Send any JSON value to every other peer of the room, through the server.
   * @param {unknown} data
   */
  broadcast(data) {
    this.send({ type: "broadcast", data });
  }

  /**
   * Change what we send to everyone: new tracks replace the old ones of the
   * same kind, without renegotiating where the browser allows.
   * @param {MediaStream | null} stream
   */
  setLocalStream(stream) {
    this.localStream = stream;
    this.mediaPending = false;
    for (const peer of this.peers.values()) peer.useStream(stream);
    this.dispatchEvent(new CustomEvent("localstream", { detail: { stream } }));
  }

  /**
   * Send a chat message to every peer, over the data channels (not through
   * the server). Peers still connecting get it once their channel opens.
   * @param {string} text
   * @returns {ChatMessage} the message as the UI shows it
   */
  sendChat(text) {
    const time = Date.now();
    /** @type {ChatWire} */
    const wire = { type: "chat", text, time };
    const encoded = JSON.stringify(wire);
    for (const peer of this.peers.values()) peer.sendChat(encoded);
    return { from: this.id, name: this.name, text, time, own: true };
  }

  /**
   * Publish an extra stream to everyone, for example a screen share; the
   * others get "streamadded" with `label`. Renegotiates.
   * @param {MediaStream} stream
   * @param {string} label
   */
  publish(stream, label) {
    this.published.set(stream, label);
    for (const peer of this.peers.values()) peer.publish(stream);
  }

  /** @param {MediaStream} stream */
  unpublish(stream) {
    this.published.delete(stream);
    for (const peer of this.peers.values()) peer.unpublish(stream);
  }

  /** Leave the room and close every peer connection. Idempotent. */
  leave() {
    if (this.closed) return;
    this.send({ type: "leave" });
    this.closed = true;
    this.ws?.close(1000);
    this.#shutdown(null);
  }

  /** @param {unknown} err */
  reportError(err) {
    console.warn("rtcroom:", err);
  }

  /** @param {JoinedMessage} message */
  #onJoined(message) {
    this.id = message.id;
    this.iceServers = message.iceServers;
    for (const info of message.peers) this.#addPeer(info, true);
    this.dispatchEvent(new CustomEvent("joined", { detail: message }));
  }

  /**
   * @param {PeerInfo} info
   * @param {boolean} newcomer
   */
  #addPeer(info, newcomer) {
    const peer = new RemotePeer(this, info, newcomer);
    this.peers.set(info.id, peer);
    this.dispatchEvent(new CustomEvent("peerjoined", { detail: { peer } }));
    return peer;
  }

  /** @param {ServerMessage} message */
  #dispatch(message) {
    switch (message.type) {
      case "peer-joined":
        if (!this.peers.has(message.peer.id)) this.#addPeer(message.peer, false);
        break;
      case "peer-left": {
        const peer = this.peers.get(message.id);
        if (peer) {
          this.peers.delete(message.id);
          peer.close();
          this.dispatchEvent(new CustomEvent("peerleft", { detail: { peer } }));
        }
        break;
      }
      case "signal": {
        const peer = this.peers.get(message.from) ?? this.#addPeer({ id: message.from, name: "" }, false);
        peer.receive(message.data);
        break;
      }
      case "broadcast":
        this.dispatchEvent(new CustomEvent("broadcast", { detail: { from: message.from, data: message.data } }));
        break;
      case "ice-servers":
        // Fresh TURN credentials before the old ones expire (docs/protocol.md).
        this.iceServers = message.iceServers;
        for (const peer of this.peers.values()) {
          if (peer.pc.signalingState !== "closed") {
            peer.pc.setConfiguration({ ...peer.pc.getConfiguration(), iceServers: message.iceServers });
          }
        }
        break;
      case "error":
        this.dispatchEvent(new CustomEvent("error", { detail: { error: new RoomError(message.code, message.message) } }));
        break;
    }
  }

  /** @param {RoomError | null} error */
  #shutdown(error) {
    for (const peer of this.peers.values()) peer.close();
    this.peers.clear();
    if (this.ws) {
      this.ws.onclose = this.ws.onmessage = this.ws.onopen = null;
      if (this.ws.readyState !== WebSocket.CLOSED) this.ws.close(1000);
      this.ws = null;
      this.dispatchEvent(new CustomEvent("close", { detail: { error } }));
    }
  }
}
