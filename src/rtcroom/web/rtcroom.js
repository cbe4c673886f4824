// rtcroom client library: connection, protocol v1 and negotiation.
//
// No UI here (see app.js for the call page built on it). Usable from any
// page: `import { RoomClient } from "/static/rtcroom.js"`.
// The wire format is docs/protocol.md; the typedefs below mirror it.

/**
 * @typedef {{mic?: "on" | "off" | "none", camera?: "on" | "off" | "none", screen?: boolean, hand?: boolean, quality?: "good" | "poor" | "lost", kind?: "person" | "bot" | "recorder"}} ParticipantState
 * @typedef {{id: string, name: string, identity?: string, via?: string, sfu?: boolean, state?: ParticipantState}} PeerInfo
 * @typedef {{urls: string | string[], username?: string, credential?: string}} IceServer
 * @typedef {"publish" | "subscribe" | "data" | "admin"} Grant
 * @typedef {{type: "joined", id: string, room: string, peers: PeerInfo[], iceServers: IceServer[], resume?: string, grants?: Grant[], mode?: "mesh" | "sfu", name?: string}} JoinedMessage
 * @typedef {{type: "peer-joined", peer: PeerInfo}} PeerJoinedMessage
 * @typedef {{type: "peer-left", id: string}} PeerLeftMessage
 * @typedef {{description?: RTCSessionDescriptionInit, streams?: Record<string, string>, candidate?: RTCIceCandidateInit | null}} SignalData
 * @typedef {{type: "signal", from: string, data: SignalData}} SignalMessage
 * @typedef {{type: "broadcast", from: string, data: unknown}} BroadcastMessage
 * @typedef {{type: "message", data: unknown}} AppMessage
 * @typedef {"bad-message" | "unknown-type" | "not-joined" | "already-joined" | "unknown-peer" | "too-large" | "room-full" | "server-full" | "rate-limited" | "unauthorized" | "forbidden" | "join-timeout" | "unavailable" | "unsupported" | "kicked" | "server-error"} ErrorCode
 * @typedef {{type: "error", code: ErrorCode, message: string, app?: boolean}} ErrorMessage
 * @typedef {{type: "ice-servers", iceServers: IceServer[]}} IceServersMessage
 * @typedef {{type: "bye", reason: string}} ByeMessage
 * @typedef {{type: "mode", mode: "mesh" | "sfu"}} ModeMessage
 * @typedef {{type: "published", sdp: string}} PublishedMessage
 * @typedef {import("./sfu.js").SubscriptionMessage} SubscriptionMessage
 * @typedef {import("./sfu.js").SfuStream} SfuStream
 * @typedef {{type: "talking", peer: string, talking: boolean}} TalkingMessage
 * @typedef {{type: "mute", kind: "audio" | "video", by: string}} MuteMessage
 * @typedef {{type: "state", peer: string, state: ParticipantState}} StateMessage
 * @typedef {{type: "reaction", peer: string, emoji: string}} ReactionMessage
 * @typedef {JoinedMessage | PeerJoinedMessage | PeerLeftMessage | SignalMessage | BroadcastMessage | IceServersMessage | ErrorMessage | ByeMessage | ModeMessage | PublishedMessage | SubscriptionMessage | TalkingMessage | AppMessage | MuteMessage | StateMessage | ReactionMessage} ServerMessage
 * @typedef {{type: "join", room: string, name: string, token?: string, resume?: string, sfu?: boolean, state?: ParticipantState}} JoinRequest
 * @typedef {{type: "signal", to: string, data: SignalData}} SignalRequest
 * @typedef {{type: "broadcast", data: unknown}} BroadcastRequest
 * @typedef {{type: "leave"}} LeaveRequest
 * @typedef {{type: "publish", sdp: string, labels?: Record<string, string>}} PublishRequest
 * @typedef {{type: "subscribe"}} SubscribeRequest
 * @typedef {{type: "answer", sdp: string}} AnswerRequest
 * @typedef {{type: "trickle", pc: "publish" | "subscribe", candidate: RTCIceCandidateInit | null}} TrickleRequest
 * @typedef {{type: "layer", mid: string, substream: number}} LayerRequest
 * @typedef {{type: "state", state: ParticipantState}} StateRequest
 * @typedef {{type: "react", emoji: string}} ReactRequest
 * @typedef {JoinRequest | SignalRequest | BroadcastRequest | LeaveRequest | StateRequest | ReactRequest | PublishRequest | SubscribeRequest | AnswerRequest | TrickleRequest | LayerRequest} ClientMessage
 */

/**
 * A connection opened before the modules loaded, by an inline script (see
 * room.html): the socket; the join it sends as soon as the socket opens, if
 * it knew the room and name; and the frames that arrived before a RoomClient
 * took it over (the script's `onmessage` pushes them here).
 * @typedef {{socket: WebSocket, join: JoinRequest | null, received: string[]}} EarlyConnection
 */

import { SfuSession, layerFor } from "./sfu.js";

// What clients share with the server, written once in Python (rtcroom/protocol.py);
// tests/test_web_constants.py checks that these copies agree with it.

/** Room names the server accepts (protocol v1). */
export const ROOM_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;

/** The close code of a peer removed by the server's application (docs/protocol.md). */
export const CLOSE_KICKED = 4003;

/** Errors after which joining again later may succeed. */
export const TRANSIENT_ERRORS = new Set(["rate-limited", "server-full", "unavailable"]);

/** What the client itself reports when the server cannot be reached or the connection ends first. */
export const CONNECTION_ERRORS = new Set(["closed", "unreachable"]);

/** Signals a reconnecting client keeps for its peers, sent if it resumes. */
export const HELD_SIGNALS = 500;

/** Reconnection backoff: BACKOFF_BASE_MS, doubling up to BACKOFF_CAP_MS. */
export const BACKOFF_BASE_MS = 250;
export const BACKOFF_CAP_MS = 8000;
/** After `bye` (a restart), the cap for the first RESTART_ATTEMPTS attempts
 * (protocol.RESTART_BACKOFF_CAP). */
export const RESTART_BACKOFF_CAP_MS = 1000;
export const RESTART_ATTEMPTS = 20;

/** The reactions a participant may send (protocol.REACTIONS). */
export const REACTIONS = ["\u{1F44D}", "\u{1F44F}", "\u{1F602}", "\u{1F62E}", "\u2764\uFE0F", "\u{1F389}"];

/** A peer connection disconnected this long (or failed) restarts ICE, at most this often
 * (protocol.ICE_RESTART_AFTER). */
export const ICE_RESTART_AFTER_MS = 3000;

/**
 * Milliseconds before reconnection attempt `attempt` (1, 2, ...): the
 * backoff times a random 0.5 to 1.5, so that clients dropped together do not
 * come back together.
 * @param {number} attempt
 * @param {number} [random] in [0, 1)
 * @param {boolean} [restarting] the server said `bye` before the connection ended
 */
export function reconnectDelay(attempt, random = Math.random(), restarting = false) {
  const cap = restarting && attempt <= RESTART_ATTEMPTS ? RESTART_BACKOFF_CAP_MS : BACKOFF_CAP_MS;
  return Math.min(cap, BACKOFF_BASE_MS * 2 ** (attempt - 1)) * (0.5 + random);
}

/** An error the server reported, or a failure to reach it. */
export class RoomError extends Error {
  /**
   * @param {ErrorCode | "unreachable" | "closed"} code
   * @param {string} message
   * @param {boolean} [app] the message is the server application's, written for people
   */
  constructor(code, message, app = false) {
    super(message);
    this.name = "RoomError";
    this.code = code;
    this.app = app;
  }
}

/**
 * The path prefix rtcroom is mounted at ("" at the root, "/rtc" inside a
 * host app): the server writes it into the page's
 * `<meta name="rtcroom-base">`.
 * @returns {string}
 */
export function basePath() {
  if (typeof document === "undefined") return "";
  return document.querySelector('meta[name="rtcroom-base"]')?.getAttribute("content") ?? "";
}

/** The default signaling URL: /ws on the server that served the page (under its prefix). */
export function defaultServerUrl() {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${location.host}${basePath()}/ws`;
}

/**
 * An access token's claims, read from its payload without checking it (the
 * server checks the signature): the page uses them to not ask for a camera
 * it may not send, or for a name the token gives. Null when there is no
 * token or it cannot be read.
 * @param {string | null | undefined} token
 * @returns {any}
 */
export function tokenClaims(token) {
  if (!token) return null;
  try {
    const payload = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    const bytes = atob(payload.padEnd(payload.length + ((4 - (payload.length % 4)) % 4), "="));
    // The payload is UTF-8 (a name may be "Zoë"): atob gives its bytes.
    return JSON.parse(new TextDecoder().decode(Uint8Array.from(bytes, (c) => c.charCodeAt(0))));
  } catch {
    return null;
  }
}

/**
 * The grants an access token carries (tokenClaims); null without a token.
 * @param {string | null | undefined} token
 * @returns {Grant[] | null}
 */
export function tokenGrants(token) {
  const claims = tokenClaims(token);
  if (claims === null) return null;
  return Array.isArray(claims?.grants) ? claims.grants : [];
}

/**
 * The display name an access token gives its holder ("" when none): the
 * server shows the others that name, so the page asks for none.
 * @param {string | null | undefined} token
 */
export function tokenName(token) {
  const name = tokenClaims(token)?.name;
  return typeof name === "string" ? name.trim().slice(0, 64) : "";
}


/** Label and id of the negotiated chat channel every peer connection has (docs/protocol.md). */
export const CHAT_CHANNEL = { label: "chat", id: 0 };

/**
 * Label and sub-protocol of a file transfer's data channel (docs/protocol.md,
 * "File transfer"; transfer.js speaks it). Here so that a page can tell a
 * file's channel before it loads transfer.js.
 */
export const FILE_CHANNEL = { label: "file", protocol: "rtcroom-file/1" };

/**
 * @typedef {{type: "chat", text: string, time: number}} ChatWire
 * @typedef {{from: string, name: string, text: string, time: number, own: boolean}} ChatMessage
 */

/** The downlink budget (kbps) that the video sent to us starts within, shared by our connections. */
export const START_BITRATE_KBPS = 1500;

/** Formats of a video section that carry no picture of their own. */
const NOT_A_PICTURE = new Set(["rtx", "red", "ulpfec", "flexfec-03"]);

/**
 * `sdp` (a description we send) asking the other side to start its video to
 * us at `kbps`: `x-google-start-bitrate` on each video format. Chromium starts
 * at 300 kbps otherwise, and paces the first key frame at that rate: the
 * first picture of a call arrives later and blurrier. Other senders ignore a
 * format parameter they do not know (aiortc does: tests/test_aiortc_interop.py),
 * and a receiver's own parameters change nothing on its side. An existing
 * value is left alone.
 * @param {string} sdp
 * @param {number} kbps
 * @returns {string}
 */
export function withStartBitrate(sdp, kbps) {
  const lines = sdp.split("\r\n");
  const param = `x-google-start-bitrate=${Math.round(kbps)}`;
  /** @type {{rtpmap: Map<string, number>, fmtp: Map<string, number>}[]} each video section's lines, by format */
  const videos = [];
  let video = null;
  for (const [i, line] of lines.entries()) {
    if (line.startsWith("m=")) {
      video = line.startsWith("m=video ") ? { rtpmap: new Map(), fmtp: new Map() } : null;
      if (video) videos.push(video);
    } else if (video) {
      const attribute = /^a=(rtpmap|fmtp):(\d+) /.exec(line);
      if (attribute) video[/** @type {"rtpmap" | "fmtp"} */ (attribute[1])].set(attribute[2], i);
    }
  }
  for (const { rtpmap, fmtp } of videos) {
    for (const [format, at] of rtpmap) {
      if (NOT_A_PICTURE.has(lines[at].split(" ")[1].split("/")[0].toLowerCase())) continue;
      const parameters = fmtp.get(format);
      // A format without parameters gets a line of its own, after its rtpmap.
      if (parameters === undefined) lines[at] += `\r\na=fmtp:${format} ${param}`;
      else if (!lines[parameters].includes("x-google-start-bitrate=")) lines[parameters] += `;${param}`;
    }
  }
  return lines.join("\r\n");
}

/**
 * One other participant: its RTCPeerConnection and the perfect-negotiation
 * state that goes with it (W3C WebRTC 1.0, section 10.7, "Perfect negotiation").
 *
 * In a room served by the SFU, its audio and video come through the SFU
 * (sfuTrack) and the connection with it carries data only: chat and files.
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
    /** @type {ParticipantState} what it says of itself (muted, camera off...): absent fields are defaults */
    this.state = info.state ?? {};
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
    // A client of the seeds' Socket.IO tutorials (docs/protocol.md): one
    // offer and one answer, never a renegotiation (an offer makes it start a
    // new connection), no data channels.
    this.tutorial = info.via === "socket.io";
    /** @type {Promise<void>} incoming signals are handled one at a time, in order */
    this.queue = Promise.resolve();
    /** @type {Map<MediaStream, RTCRtpSender[]>} senders of our published extra streams */
    this.extraSenders = new Map();
    this.client = client;
    /** @type {number | undefined} the start bitrate (kbps) our descriptions ask for, once decided */
    this.startKbps = undefined;
    this.pc = new RTCPeerConnection({
      iceServers: client.iceServers,
      // Relay only: never reveal our addresses to the other peer (privacy).
      iceTransportPolicy: client.relayOnly ? "relay" : "all",
    });
    const pc = this.pc;
    pc.onnegotiationneeded = () => {
      if (!this.tutorial) this.#negotiate();
    };
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
    // Without the `data` grant there is no channel (the server would refuse the offer).
    /** @type {RTCDataChannel | null} */
    this.chat = null;
    /** @type {string[]} */
    this.chatQueue = [];
    if (client.allows("data") && !this.tutorial) {
      const chat = pc.createDataChannel(CHAT_CHANNEL.label, { negotiated: true, id: CHAT_CHANNEL.id });
      chat.onopen = () => {
        for (const text of this.chatQueue.splice(0)) chat.send(text);
      };
      chat.onmessage = ({ data }) => this.#onChat(data);
      this.chat = chat;
    }
    // A connection that failed, or stays disconnected (the network changed,
    // say), gets new ICE candidates through an ICE restart; negotiation
    // follows as usual. Chromium reports such a connection as failed
    // (connectionState) while its ICE state stays "disconnected": both count.
    // Restarts are at least ICE_RESTART_AFTER_MS apart while it stays down.
    /** @type {ReturnType<typeof setTimeout> | undefined} */
    let pending;
    let lastRestart = -Infinity;
    const restartIce = () => {
      clearTimeout(pending);
      const wait = lastRestart + ICE_RESTART_AFTER_MS - performance.now();
      if (wait > 0) {
        pending = setTimeout(restartIce, wait);
        return;
      }
      const state = pc.iceConnectionState;
      if (!this.mayOffer || pc.signalingState === "closed" || state === "connected" || state === "completed") return;
      lastRestart = performance.now();
      pc.restartIce();
    };
    pc.oniceconnectionstatechange = () => {
      clearTimeout(pending);
      if (pc.iceConnectionState === "failed") restartIce();
      else if (pc.iceConnectionState === "disconnected") pending = setTimeout(restartIce, ICE_RESTART_AFTER_MS);
    };
    pc.addEventListener("connectionstatechange", () => {
      if (pc.connectionState === "failed") restartIce();
    });

    /** @type {Map<string, MediaStreamTrack>} tracks the SFU forwards from this peer, by mid */
    this.sfuTracks = new Map();
    const sfu = client.mode === "sfu";
    const stream = client.localStream;
    if (stream && !sfu) for (const track of stream.getTracks()) pc.addTrack(track, stream);
    if (!sfu) for (const [extra] of client.published) this.publish(extra);
    if (!newcomer) return;
    if (sfu) {
      // Data only (chat, files): nothing to call about without the data grant.
      if (this.chat) this.#negotiate();
      return;
    }
    if (this.tutorial && client.mediaPending) {
      // A tutorial client shows the stream our tracks arrive in, and takes
      // no renegotiation: offer once our media is there, tracks in a stream.
      client.addEventListener("localstream", () => this.#offerFirst(), { once: true });
    } else {
      this.#offerFirst();
    }
  }

  /** The newcomer's first offer. */
  #offerFirst() {
    const pc = this.pc;
    if (pc.signalingState === "closed") return;
    const stream = this.client.localStream;
    // The offer always has an audio and a video section. Without a track of
    // a kind we still ask to receive it, so the other side can fill it; and
    // while our own media is still starting, the section is sendrecv so that
    // the track slots in later with replaceTrack, without renegotiating
    // (never without the "publish" grant: the server refuses such an offer).
    const kinds = new Set(stream ? stream.getTracks().map((t) => t.kind) : []);
    const direction = this.client.mediaPending && this.client.allows("publish") ? "sendrecv" : "recvonly";
    for (const kind of ["audio", "video"]) {
      if (!kinds.has(kind)) pc.addTransceiver(kind, { direction });
    }
    // Offer now rather than when "negotiationneeded" gets dispatched: the
    // first offer is on the critical path to the first frame.
    this.#negotiate();
  }

  /**
   * Send `stream`'s tracks (or nothing, for null) to this peer. A track takes
   * a free slot of its kind with replaceTrack (no renegotiation when the slot
   * already sends); otherwise it is added. Slots left without a track stop
   * sending. Renegotiation, when needed, follows through "negotiationneeded".
   * @param {MediaStream | null} stream
   */
  useStream(stream) {
    if (this.pc.signalingState === "closed" || this.client.mode === "sfu") return;
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
    if (this.extraSenders.has(stream) || this.pc.signalingState === "closed" || this.client.mode === "sfu") return;
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
    if (this.chat?.readyState === "open") this.chat.send(text);
    else if (this.chat?.readyState === "connecting") this.chatQueue.push(text);
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
    // The SFU carries this kind from this peer already (the room switched;
    // a renegotiation of our own connection may still announce its tracks).
    if ([...this.sfuTracks.values()].some((t) => t.kind === track.kind && t.readyState === "live")) return;
    for (const old of this.stream.getTracks()) if (old.kind === track.kind) this.stream.removeTrack(old);
    this.stream.addTrack(track);
    client.dispatchEvent(new CustomEvent("track", { detail: { peer: this, track } }));
  }

  /**
   * A track of this peer's that the SFU forwards (on the subscribing connection's `mid`).
   * @param {MediaStreamTrack} track
   * @param {string} mid
   * @param {SfuStream} stream
   */
  sfuTrack(track, mid, stream) {
    this.sfuTracks.set(mid, track);
    if (stream.label) {
      // An extra stream (a screen): a stream of its own, by the publisher's mid.
      const id = `sfu:${stream.source ?? mid}`;
      let remote = this.extraStreams.get(id);
      const added = !remote;
      remote ??= new MediaStream();
      for (const old of remote.getTracks()) if (old.kind === track.kind) remote.removeTrack(old);
      remote.addTrack(track);
      this.extraStreams.set(id, remote);
      if (added) {
        this.client.dispatchEvent(
          new CustomEvent("streamadded", { detail: { peer: this, stream: remote, label: stream.label } }),
        );
      }
      return;
    }
    for (const old of this.stream.getTracks()) if (old.kind === track.kind) this.stream.removeTrack(old);
    this.stream.addTrack(track);
    // Called in the mesh before the room switched: the SFU carries this kind now.
    for (const t of this.pc.getTransceivers()) {
      if (t.receiver.track.kind === track.kind && t.currentDirection && t.currentDirection !== "stopped") t.stop();
    }
    this.client.dispatchEvent(new CustomEvent("track", { detail: { peer: this, track } }));
  }

  /**
   * The SFU stopped forwarding `mid` of this peer's (it stopped sharing, or left).
   * @param {string} mid
   * @param {SfuStream} stream
   */
  sfuStreamEnded(mid, stream) {
    const track = this.sfuTracks.get(mid);
    this.sfuTracks.delete(mid);
    if (!track) return;
    if (stream.label) {
      const id = `sfu:${stream.source ?? mid}`;
      const remote = this.extraStreams.get(id);
      if (remote && this.extraStreams.delete(id)) {
        this.client.dispatchEvent(
          new CustomEvent("streamremoved", { detail: { peer: this, stream: remote, label: stream.label } }),
        );
      }
    } else if (this.stream.getTracks().includes(track)) {
      this.stream.removeTrack(track);
    }
  }

  /** The receivers of this peer's audio and video: its own connection's, or the SFU's for it. */
  receivers() {
    const sfu = this.client.sfu.subscriber;
    if (!sfu || this.sfuTracks.size === 0) return this.pc.getReceivers();
    return sfu.getReceivers().filter((r) => [...this.sfuTracks.values()].includes(r.track));
  }

  /** @param {SignalData} data */
  #send(data) {
    this.client.send({ type: "signal", to: this.id, data });
  }

  /**
   * A description of ours as we send it: asking for a start bitrate of the
   * video to us (withStartBitrate), the client's budget shared by the peers
   * there are when we first describe; the same in every later description
   * (a new value would reset the sender's bandwidth estimate).
   * @param {RTCSessionDescription} description
   * @returns {RTCSessionDescriptionInit}
   */
  #describe(description) {
    const budget = this.client.startBitrate;
    if (!budget) return description.toJSON();
    this.startKbps ??= Math.max(300, budget / Math.max(1, this.client.peers.size));
    return { type: description.type, sdp: withStartBitrate(description.sdp, this.startKbps) };
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
        this.#send({ description: this.#describe(this.pc.localDescription), streams: this.#labels() });
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
        if (pc.localDescription) this.#send({ description: this.#describe(pc.localDescription), streams: this.#labels() });
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
 * - "message" {data}: data from the server's application (RoomServer.send, .broadcast)
 * - "mute" {kind, by}: a moderator (`by`) muted our "audio" or turned our "video"
 *   off (the admin API); the client has disabled those tracks already
 * - "norelay" {required}: relay only was asked for, and the server has no TURN
 *   server: with `relayOnly: true` (required) no call can connect; with
 *   "if-available" the calls connect directly
 * - "error" {error: RoomError}: a recoverable error
 * - "reconnecting" {attempt}: the server connection dropped; media keeps flowing
 *   while the client reconnects with jittered backoff
 * - "reconnected" {resumed}: back in the room; `resumed` when with the same id
 *   (nobody noticed), otherwise the calls were set up again
 * - "close" {error: RoomError | null}: the server connection ended for good
 *   (error code "kicked": the server's application or a moderator removed us)
 * - "mode" {mode}: the room is served by the SFU now (or by another SFU node)
 * - "talking" {peer, talking}: in SFU mode, a peer started or stopped speaking
 * - "state" {peer, state}: a peer changed its participant state (peer.state)
 * - "reaction" {peer, emoji}: a peer reacted
 * - "sfustatechange" {publisher, subscriber}: the connections with the SFU changed state
 */
export class RoomClient extends EventTarget {
  /**
   * `localStream` is what we send: a MediaStream, null for receive-only, or a
   * promise of either (for example getUserMedia's). With a promise, joining
   * and negotiating go on while the camera starts, and the tracks slot in
   * when it resolves.
   * `early` is an optional connection to `url` opened earlier (by an inline
   * script while the modules load, say), that may have sent our join already:
   * the client adopts it when it is still usable and joined (or will join)
   * this room with this name and token, and otherwise closes it.
   * @param {{room: string, name: string, url?: string,
   *          localStream?: MediaStream | null | Promise<MediaStream | null>,
   *          early?: EarlyConnection | null, relayOnly?: boolean | "if-available",
   *          token?: string | null, startBitrate?: number}} options
   * `relayOnly` sends all media and data through the TURN server
   * (iceTransportPolicy "relay"): the others never learn our IP addresses.
   * "if-available": so when the server has a TURN server, else directly
   * (the "norelay" event says which).
   * `token` is the access token, when the server requires one.
   * `startBitrate` (kbps) is what the video sent to us starts at in all, shared
   * by the connections (at least 300 each; 0 leaves it to the senders):
   * see withStartBitrate.
   */
  constructor({
    room,
    name,
    url = defaultServerUrl(),
    localStream = null,
    early = null,
    relayOnly = false,
    token = null,
    startBitrate = START_BITRATE_KBPS,
  }) {
    super();
    if (typeof startBitrate !== "number" || !(startBitrate >= 0 && startBitrate < Infinity)) {
      throw new TypeError(`startBitrate is a number of kbps, 0 or more: not ${typeof startBitrate} ${startBitrate}`);
    }
    this.startBitrate = startBitrate;
    this.token = token;
    /** @type {Grant[]} what we may do: from `joined`, or from the token until then */
    this.grants = tokenGrants(token) ?? ["publish", "subscribe", "data", "admin"];
    /** key to resume our place after a dropped connection (from `joined`) */
    this.resumeKey = "";
    /** true while the connection is down and being re-established */
    this.reconnecting = false;
    /** what was asked for; relayOnly is what the calls do, once joined */
    this.relayWanted = relayOnly;
    this.relayOnly = relayOnly === true;
    this.#early = early;
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
    /** @type {"mesh" | "sfu"} how the room's media flows: peer to peer, or through the SFU */
    this.mode = "mesh";
    /** our connections with the SFU, in SFU mode */
    this.sfu = new SfuSession(this);
    /** @type {ParticipantState} what the others see of us (setState) */
    this.state = {};
  }

  /**
   * Change what the others see of us (docs/protocol.md, "Participant state"):
   * `setState({mic: "off"})`. Sent now when in the room, else with the join.
   * @param {ParticipantState} changes
   */
  setState(changes) {
    const state = { ...this.state, ...changes };
    if (JSON.stringify(state) === JSON.stringify(this.state)) return;
    this.state = state;
    this.#sendState();
  }

  /** Our state to the server, when in the room (the server skips a repeat). */
  #sendState() {
    if (this.id && !this.reconnecting && Object.keys(this.state).length) this.send({ type: "state", state: this.state });
  }

  /**
   * Show everyone a reaction, one of REACTIONS.
   * @param {string} emoji
   */
  react(emoji) {
    if (!REACTIONS.includes(emoji)) throw new TypeError(`${emoji} is not one of the reactions ${REACTIONS.join(" ")}`);
    if (this.id && !this.reconnecting) this.send({ type: "react", emoji });
  }

  /**
   * Open the connection to the server. join() does it too; calling it early
   * (while the camera starts, say) saves a round trip. Idempotent.
   * @returns {Promise<void>}
   */
  connect() {
    if (this.#opened) return this.#opened;
    const early = this.#early;
    this.#early = null;
    const join = early?.join;
    const ours = !join || (join.room === this.room && join.name === this.name && (join.token ?? null) === this.token);
    if (!early || early.socket.url !== this.url || early.socket.readyState > WebSocket.OPEN || !ours) {
      early?.socket.close(1000);
      this.#opened = this.#open(new WebSocket(this.url));
      return this.#opened;
    }
    // Its join is ours: its answer (maybe among the frames already received)
    // is what join() waits for.
    if (join) this.#earlyJoin = new Promise((resolve, reject) => (this.#pending = { resolve, reject }));
    this.#opened = this.#open(early.socket);
    for (const data of early.received.splice(0)) this.#onMessage(JSON.parse(data));
    return this.#opened;
  }

  /**
   * Take `ws` as our connection; resolve once it is open.
   * @param {WebSocket} ws
   * @returns {Promise<void>}
   */
  #open(ws) {
    return new Promise((resolve, reject) => {
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
        this.ws = null;
        const pending = this.#pending;
        this.#pending = null;
        pending?.reject(error);
        if (this.closed || this.reconnecting) return;
        if (!this.id && !pending) {
          // Opened ahead of a join that has not come yet (a page that shows a
          // step before joining; the server ends idle connections): join()
          // opens a new one.
          this.#opened = null;
          return;
        }
        if (event.code === CLOSE_KICKED) {
          // Removed by the server's application: never come back on our own.
          this.closed = true;
          this.#shutdown(new RoomError("kicked", event.reason || "You were removed from the room.", Boolean(event.reason)));
          return;
        }
        // Once in a room, a lost connection is not the end: reconnect and
        // resume (the media between peers does not go through the server).
        if (this.id) this.#reconnect();
        else this.#shutdown(error);
      };
    });
  }

  /** Reconnect with jittered exponential backoff until back in the room, or closed. */
  async #reconnect() {
    this.reconnecting = true;
    for (let attempt = 1; !this.closed; attempt++) {
      this.dispatchEvent(new CustomEvent("reconnecting", { detail: { attempt } }));
      await new Promise((resolve) => setTimeout(resolve, reconnectDelay(attempt, Math.random(), this.#restarting)));
      if (this.closed) return;
      try {
        await this.#open(new WebSocket(this.url));
        const joined = await this.#requestJoin(this.resumeKey);
        this.reconnecting = false;
        this.#restarting = false;
        this.#onRejoined(joined);
        return;
      } catch (err) {
        if (err instanceof RoomError && !TRANSIENT_ERRORS.has(err.code) && !CONNECTION_ERRORS.has(err.code)) {
          // Refused for good (the token expired, say): say so and stop.
          this.reconnecting = false;
          this.closed = true;
          this.#shutdown(err);
          return;
        }
        if (this.ws) {
          this.ws.onclose = null;
          this.ws.close();
          this.ws = null;
        }
      }
    }
  }

  /**
   * Send `join` (with our token, and a resume key if given) and wait for the answer.
   * @param {string} [resume]
   * @returns {Promise<JoinedMessage>}
   */
  #requestJoin(resume) {
    return new Promise((resolve, reject) => {
      this.#pending = { resolve, reject };
      /** @type {JoinRequest} */
      const request = { type: "join", room: this.room, name: this.name, sfu: true };
      if (this.token) request.token = this.token;
      if (resume) request.resume = resume;
      if (Object.keys(this.state).length) request.state = this.state;
      this.send(request);
    });
  }

  /**
   * Back in the room after a reconnect.
   * @param {JoinedMessage} message
   */
  #onRejoined(message) {
    const resumed = message.id === this.id;
    if (resumed) {
      this.iceServers = message.iceServers;
      this.resumeKey = message.resume ?? "";
      for (const request of this.#held.splice(0)) this.send(request);
      // In SFU mode, the media went on meanwhile; the SFU's latest offer comes again.
    } else {
      this.sfu.close();
      // A new id (the grace period ran out, or the server restarted): the
      // others know us no more. Start over: drop the old calls, call anew.
      this.#held.length = 0;
      for (const [id, peer] of this.peers) {
        this.peers.delete(id);
        peer.close();
        this.dispatchEvent(new CustomEvent("peerleft", { detail: { peer } }));
      }
      this.#onJoined(message);
    }
    this.dispatchEvent(new CustomEvent("reconnected", { detail: { resumed } }));
  }

  /**
   * May we do `grant`? (Open servers grant everything.)
   * @param {Grant} grant
   */
  allows(grant) {
    return this.grants.includes(grant);
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
    const early = this.#earlyJoin;
    this.#earlyJoin = null;
    return early ?? this.#requestJoin();
  }

  /** @type {ClientMessage[]} signals sent while reconnecting, for after a resume */
  #held = [];
  /** The server said `bye`: it is restarting, so reconnect soon (reconnectDelay). */
  #restarting = false;

  /** @type {Promise<void> | null} */
  #opened = null;
  /** @type {EarlyConnection | null} */
  #early = null;
  /** @type {Promise<JoinedMessage> | null} the answer to the join the early connection sent */
  #earlyJoin = null;
  /** @type {{resolve: (m: JoinedMessage) => void, reject: (e: RoomError) => void} | null} */
  #pending = null;

  /** @param {ServerMessage} message */
  #onMessage(message) {
    const pending = this.#pending;
    if (pending && message.type === "error") {
      this.#pending = null;
      pending.reject(new RoomError(message.code, message.message, message.app));
      if (this.reconnecting) return; // #reconnect decides
      this.closed = true;
      this.#shutdown(null);
    } else if (pending && message.type === "joined") {
      this.#pending = null;
      if (!this.reconnecting) this.#onJoined(message);
      pending.resolve(message);
    } else if (message.type === "error" && message.code === "join-timeout" && !this.id) {
      // A connection opened ahead of the join, idle too long: join() opens another.
    } else {
      this.#dispatch(message);
    }
  }

  /** @param {ClientMessage} message */
  send(message) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN && !(this.reconnecting && message.type !== "join")) {
      this.ws.send(JSON.stringify(message));
    } else if (this.reconnecting && message.type === "signal" && this.#held.length < HELD_SIGNALS) {
      // Kept for the peer if we resume; dropped if we come back as someone new.
      this.#held.push(message);
    }
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
    if (this.mode === "sfu") this.sfu.useStream(stream);
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
    if (this.mode === "sfu") this.sfu.publishExtra(stream);
    for (const peer of this.peers.values()) peer.publish(stream);
  }

  /** @param {MediaStream} stream */
  unpublish(stream) {
    this.published.delete(stream);
    this.sfu.unpublishExtra(stream);
    for (const peer of this.peers.values()) peer.unpublish(stream);
  }

  /**
   * Say how wide (CSS pixels) `peer`'s video is shown: in SFU mode, the
   * layer received follows (the smallest that fills it).
   * @param {RemotePeer} peer
   * @param {number} width
   */
  setReceiveWidth(peer, width) {
    for (const [mid, stream] of this.sfu.streams) {
      if (stream.peer === peer.id && stream.kind === "video" && !stream.label) {
        this.sfu.requestLayer(mid, layerFor(width, globalThis.devicePixelRatio ?? 1));
      }
    }
  }

  /** Leave the room and close every peer connection. Idempotent. */
  leave() {
    if (this.closed) return;
    this.send({ type: "leave" });
    this.closed = true;
    this.ws?.close(1000);
    this.#shutdown(null);
  }

  /** Whether the server gives us a TURN server (known once joined): relay only can work. */
  get hasRelay() {
    return this.iceServers.some((server) =>
      [server.urls].flat().some((url) => url.startsWith("turn:") || url.startsWith("turns:")),
    );
  }

  /** @param {unknown} err */
  reportError(err) {
    console.warn("rtcroom:", err);
  }

  /** @param {JoinedMessage} message */
  #onJoined(message) {
    this.id = message.id;
    this.iceServers = message.iceServers;
    if (this.relayWanted) {
      // Before any call is made: they take the policy when created.
      this.relayOnly = this.hasRelay || this.relayWanted === true;
      if (!this.hasRelay) {
        this.dispatchEvent(new CustomEvent("norelay", { detail: { required: this.relayWanted === true } }));
      }
    }
    this.resumeKey = message.resume ?? "";
    if (message.grants) this.grants = message.grants;
    // The name the others see (a token's, or the site's on-join hook's).
    if (message.name) this.name = message.name;
    this.mode = message.mode ?? "mesh";
    for (const info of message.peers) this.#addPeer(info, true);
    if (this.mode === "sfu") this.sfu.start();
    // A join sent early (room.html) said nothing of our state.
    this.#sendState();
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
      case "message":
        this.dispatchEvent(new CustomEvent("message", { detail: { data: message.data } }));
        break;
      case "ice-servers":
        // Fresh TURN credentials before the old ones expire (docs/protocol.md).
        this.iceServers = message.iceServers;
        for (const pc of [...[...this.peers.values()].map((p) => p.pc), this.sfu.publisher, this.sfu.subscriber]) {
          if (pc && pc.signalingState !== "closed") {
            pc.setConfiguration({ ...pc.getConfiguration(), iceServers: message.iceServers });
          }
        }
        break;
      case "error":
        this.dispatchEvent(new CustomEvent("error", { detail: { error: new RoomError(message.code, message.message, message.app) } }));
        break;
      case "bye":
        // The server is restarting; it closes the connection next and we
        // reconnect (to it or to another process), soon: see reconnectDelay.
        this.#restarting = true;
        break;
      case "mode":
        // The room is served by the SFU from now on (or by another SFU node):
        // connect to it; the calls with each peer keep going until its media
        // arrives through the SFU (RemotePeer.sfuTrack).
        this.mode = message.mode;
        if (message.mode === "sfu") this.sfu.start();
        this.dispatchEvent(new CustomEvent("mode", { detail: { mode: message.mode } }));
        break;
      case "published":
        this.sfu.published(message.sdp);
        break;
      case "subscription":
        this.sfu.subscription(message);
        break;
      case "state": {
        const peer = this.peers.get(message.peer);
        if (peer) {
          peer.state = message.state;
          this.dispatchEvent(new CustomEvent("state", { detail: { peer, state: message.state } }));
        }
        break;
      }
      case "reaction": {
        const peer = this.peers.get(message.peer);
        if (peer) this.dispatchEvent(new CustomEvent("reaction", { detail: { peer, emoji: message.emoji } }));
        break;
      }
      case "talking": {
        const peer = this.peers.get(message.peer);
        if (peer) this.dispatchEvent(new CustomEvent("talking", { detail: { peer, talking: message.talking } }));
        break;
      }
      case "mute":
        // A moderator asks us to mute (the admin API): the tracks stay, silent
        // or black, until the user turns them back on.
        for (const track of this.localStream?.getTracks() ?? []) {
          if (track.kind === message.kind) track.enabled = false;
        }
        this.dispatchEvent(new CustomEvent("mute", { detail: { kind: message.kind, by: message.by } }));
        break;
    }
  }

  /** @param {RoomError | null} error */
  #shutdown(error) {
    this.sfu.close();
    for (const peer of this.peers.values()) peer.close();
    this.peers.clear();
    if (this.ws) {
      this.ws.onclose = this.ws.onmessage = this.ws.onopen = null;
      if (this.ws.readyState !== WebSocket.CLOSED) this.ws.close(1000);
      this.ws = null;
    }
    if (!this.#ended) {
      this.#ended = true;
      this.dispatchEvent(new CustomEvent("close", { detail: { error } }));
    }
  }

  #ended = false;
}
