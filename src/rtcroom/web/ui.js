// What the call page's modules share: its elements, notices, video tiles and lazy loads.
import { RoomError, basePath } from "./rtcroom.js";

/**
 * @typedef {{figure: HTMLElement, video: HTMLVideoElement, label: HTMLElement}} Tile
 */

/**
 * `load` run at the first call, its promise shared by the later ones; a
 * failed load (the network went away) is tried again at the next call.
 * @template T
 * @param {() => Promise<T>} load
 * @returns {() => Promise<T>}
 */
export function once(load) {
  /** @type {Promise<T> | null} */
  let loading = null;
  return () =>
    (loading ??= load().catch((err) => {
      loading = null;
      throw err;
    }));
}

// What the first frame does not need (statistics, file transfer) is loaded a
// second after the page is set up, or at first use: every request a fresh
// page makes delays its scripts, and so the call, on a busy machine
// (docs/benchmarks.md).
export const loadStats = once(() => import("./stats.js"));
export const loadTransfer = once(() => import("./transfer.js"));

/** @param {string} id */
export const $ = (id) => /** @type {HTMLElement} */ (document.getElementById(id));
/** @param {string} id */
export const button = (id) => /** @type {HTMLButtonElement} */ (document.getElementById(id));
/** @param {string} id */
export const select = (id) => /** @type {HTMLSelectElement} */ (document.getElementById(id));

export const grid = $("grid");
export const statusLine = $("status");
export const notice = $("notice");

/** Plain-words messages for the error codes a user can meet. */
const MESSAGES = {
  "room-full": "This room is full. Try another room or come back later.",
  unreachable: "The rtcroom server cannot be reached. Check your connection and reload the page.",
  closed: "The connection to the server was lost. Reload the page to rejoin.",
  "bad-message": "The server did not accept the request.",
  unauthorized: "Your link does not let you into this room (it may have expired). Ask for a new one.",
  forbidden: "Your link does not allow this.",
  "rate-limited": "Too many attempts from your network. Wait a minute, then reload the page.",
  "server-full": "The server is at capacity. Come back later.",
  kicked: "You were removed from the room.",
  "server-error": "The server could not handle this. Try again, or reload the page.",
  // Said by the server with its internals ("the SFU is unavailable"): not shown.
  unavailable: "The call cannot start right now: a part of the service is not running. Try again in a minute.",
};

/**
 * Words as a sentence, in the page's one voice: a capital first and a full
 * stop last ("removed by a moderator" -> "Removed by a moderator.").
 * @param {string} text
 */
export function sentence(text) {
  const words = text.trim();
  if (!words) return words;
  const capital = words[0].toLocaleUpperCase() + words.slice(1);
  return /[.!?…]$/.test(capital) ? capital : `${capital}.`;
}

/**
 * Show a message to the user (never only in the console).
 * @param {string} text
 * @param {"info" | "error"} [level]
 */
export function showNotice(text, level = "error") {
  notice.textContent = text;
  notice.dataset.level = level;
  notice.hidden = false;
}

/**
 * The end of the call, whatever ended it: what happened, in plain words, and
 * what to do next (rejoin, or back to the lobby with this room filled in).
 * `release` stops the camera and microphone and closes the calls; the page's
 * videos are stopped too. Shown once: the first end is the one that counts.
 * "Rejoin" goes straight back in, as `name`, with the choices made before
 * (no step before joining again).
 * @param {{title: string, reason?: string, room: string, name?: string, release: () => void}} end
 */
export function showEnd({ title, reason = "", room, name = "", release }) {
  if (document.body.classList.contains("ended")) return;
  release();
  for (const video of document.querySelectorAll("video")) {
    const stream = /** @type {MediaStream | null} */ (video.srcObject);
    for (const track of stream?.getTracks() ?? []) track.stop();
    video.srcObject = null;
  }
  document.querySelectorAll("dialog[open]").forEach((dialog) => /** @type {HTMLDialogElement} */ (dialog).close());
  $("end-title").textContent = title;
  $("end-reason").textContent = reason;
  $("end-reason").hidden = !reason;
  const lobby = /** @type {HTMLAnchorElement} */ ($("to-lobby"));
  lobby.href = `${basePath()}/?room=${encodeURIComponent(room)}`;
  $("rejoin").onclick = () => {
    const again = new URL(location.href);
    if (name) again.searchParams.set("name", name);
    again.searchParams.set("prejoin", "0");
    location.assign(again);
  };
  document.body.classList.add("ended");
  $("end-screen").hidden = false;
  $("end-title").focus();
  announce(reason ? `${title}. ${reason}` : `${title}.`);
}

/**
 * Stop the camera and microphone, and every call: what each end screen does first. Idempotent.
 * @param {import("./rtcroom.js").RoomClient} client
 */
export function releaseCall(client) {
  for (const track of client.localStream?.getTracks() ?? []) track.stop();
  client.leave();
}

/** @param {unknown} err */
export function describe(err) {
  if (err instanceof RoomError) {
    // The site's own words (its join rule refused us, it removed us), as sentences.
    if (err.app) return sentence(err.message);
    return /** @type {Record<string, string>} */ (MESSAGES)[err.code] ?? err.message;
  }
  if (err instanceof DOMException && err.name === "NotAllowedError") return "Permission was refused.";
  return String(err instanceof Error ? err.message : err);
}

/**
 * Up to two initials of a name, for the tile of someone whose camera is off ("Ann Lee" -> "AL").
 * @param {string} name
 */
export function initials(name) {
  const words = name.replace(/\(.*?\)/g, "").trim().split(/\s+/).filter(Boolean);
  const letters = words.length > 1 ? [words[0], words[words.length - 1]] : words;
  return letters.map((word) => [...word][0]?.toLocaleUpperCase() ?? "").join("") || "?";
}

/**
 * A video tile: a <figure> with a <video>, a name, and its states in words
 * (connecting, muted, camera off, hand raised, speaking: text, not only a
 * colour or an icon). Without a picture it shows the initials of `name`
 * on a dark tile. The grid's columns follow the number of tiles in style.css.
 * @param {{name: string, peerId?: string, local?: boolean, screen?: boolean, first?: boolean}} options
 * `first` puts it before the others (our own camera).
 * @returns {Tile}
 */
export function addTile({ name, peerId, local = false, screen = false, first = false }) {
  const figure = document.createElement("figure");
  figure.className = ["tile", local ? "local" : "", screen ? "screen" : ""].filter(Boolean).join(" ");
  const video = document.createElement("video");
  video.autoplay = true;
  video.playsInline = true;
  if (local) {
    video.muted = true;
    video.dataset.local = "true";
  }
  if (peerId && !screen) {
    video.dataset.peerId = peerId;
    figure.dataset.peerId = peerId;
  }
  if (screen) video.dataset.screen = peerId ?? "local";
  const avatar = document.createElement("span");
  avatar.className = "avatar";
  avatar.setAttribute("aria-hidden", "true");
  avatar.textContent = initials(name);
  const label = document.createElement("figcaption");
  label.textContent = name;
  const [connection, media, hand, kind, speaking] = ["tile-connection", "tile-media", "tile-hand", "tile-kind", "tile-speaking"].map(
    (className) => {
      const words = document.createElement("span");
      words.className = className;
      return words;
    },
  );
  // Its states as badges along the top, in words.
  const states = document.createElement("div");
  states.className = "tile-states";
  states.append(kind, hand, media, connection);
  figure.append(video, avatar, label, states, speaking);
  if (first) grid.prepend(figure);
  else grid.append(figure);
  return { figure, video, label };
}

/**
 * A tile's name: its caption and the initials shown without a picture.
 * @param {Tile} tile
 * @param {string} name
 */
export function setTileName({ figure, label }, name) {
  label.textContent = name;
  /** @type {HTMLElement} */ (figure.querySelector(".avatar")).textContent = initials(name);
}

/** What a tile's connection state (`data-state`) is called on screen. */
const CONNECTION_WORDS = /** @type {Record<string, string>} */ ({
  new: "connecting…",
  connecting: "connecting…",
  failed: "connection problem",
  disconnected: "connection problem",
});

/** What a participant's own measure of its connection is called (ParticipantState.quality). */
const QUALITY_WORDS = /** @type {Record<string, string>} */ ({ poor: "poor connection", lost: "connection lost" });

/** What a participant that is not a person is called on its tile. */
const KIND_WORDS = /** @type {Record<string, string>} */ ({ bot: "bot", recorder: "recording" });

/**
 * @typedef {{connection?: string, cameraOff?: boolean, noCamera?: boolean, noPicture?: boolean, noMedia?: boolean, muted?: boolean,
 *   speaking?: boolean, hand?: boolean, kind?: string, quality?: string}} TileStates
 */

/**
 * Set a tile's states and the words that show them.
 * @param {Tile} tile
 * @param {TileStates} states
 */
export function setTileState({ figure }, states) {
  const { connection, speaking, hand, kind, quality } = states;
  const words = (/** @type {string} */ name, /** @type {string} */ text) =>
    (/** @type {HTMLElement} */ (figure.querySelector(`.${name}`)).textContent = text);
  if (speaking !== undefined) {
    figure.classList.toggle("speaking", speaking);
    words("tile-speaking", speaking ? "speaking" : "");
  }
  if (connection !== undefined) figure.dataset.state = connection;
  if (quality !== undefined) figure.dataset.quality = quality;
  if (connection !== undefined || quality !== undefined) {
    words("tile-connection", CONNECTION_WORDS[figure.dataset.state ?? ""] ?? QUALITY_WORDS[figure.dataset.quality ?? ""] ?? "");
  }
  for (const flag of /** @type {const} */ (["cameraOff", "noCamera", "noPicture", "noMedia", "muted"])) {
    const value = states[flag];
    if (value !== undefined) figure.classList.toggle(flag.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`), value);
  }
  if (hand !== undefined) {
    figure.classList.toggle("hand", hand);
    words("tile-hand", hand ? "\u270B hand raised" : "");
  }
  if (kind !== undefined) {
    figure.dataset.kind = kind;
    words("tile-kind", KIND_WORDS[kind] ?? "");
  }
  const has = (/** @type {string} */ name) => figure.classList.contains(name);
  const media = has("no-media")
    ? ["receive-only"]
    : [has("muted") ? "muted" : "", has("no-camera") ? "no camera" : has("camera-off") ? "camera off" : ""];
  words("tile-media", media.filter(Boolean).join(" \u00B7 "));
}

/**
 * A peer's participant state (rtcroom.js ParticipantState) on its tile.
 * @param {Tile} tile
 * @param {import("./rtcroom.js").ParticipantState} state
 */
export function showPeerState(tile, state) {
  const kind = state.kind ?? "person";
  setTileState(tile, {
    muted: state.mic === "off",
    cameraOff: state.camera === "off",
    // A person without a camera; a recorder or a bot needs none, which its kind says.
    noCamera: state.camera === "none" && kind === "person",
    noPicture: state.camera === "none",
    noMedia: false,
    hand: state.hand ?? false,
    kind,
    quality: state.quality ?? "good",
  });
}

/**
 * A reaction on a tile for a few seconds.
 * @param {Tile} tile
 * @param {string} emoji
 */
export function showReaction(tile, emoji) {
  const shown = document.createElement("span");
  shown.className = "reaction";
  shown.setAttribute("aria-hidden", "true"); // announced in words once
  shown.textContent = emoji;
  tile.figure.append(shown);
  setTimeout(() => shown.remove(), 4000);
}

/**
 * Resolves when `video` presents its first frame (or has one to present,
 * where requestVideoFrameCallback is missing).
 * @param {HTMLVideoElement} video
 * @returns {Promise<void>}
 */
export function firstFrame(video) {
  return new Promise((resolve) => {
    if ("requestVideoFrameCallback" in HTMLVideoElement.prototype) video.requestVideoFrameCallback(() => resolve());
    else video.addEventListener("loadeddata", () => resolve(), { once: true });
  });
}

/**
 * A device list: the devices of `kind`, `chosen` selected; `none` when there is none.
 * @param {HTMLSelectElement} list
 * @param {MediaDeviceInfo[]} devices
 * @param {MediaDeviceKind} kind
 * @param {string} chosen
 * @param {string} none
 */
export function fillDevices(list, devices, kind, chosen, none) {
  const found = devices.filter((d) => d.kind === kind);
  list.replaceChildren(
    ...found.map((device, i) => {
      const option = document.createElement("option");
      option.value = device.deviceId;
      option.textContent = device.label || `${kind} ${i + 1}`;
      option.selected = device.deviceId === chosen;
      return option;
    }),
  );
  if (found.length === 0) list.append(new Option(none, ""));
  list.disabled = found.length === 0;
}

/** The browser's sound processing, each a setting (on unless turned off): localStorage keys. */
export const SOUND_PROCESSING = {
  noiseSuppression: "rtcroom.noiseSuppression",
  echoCancellation: "rtcroom.echoCancellation",
  autoGainControl: "rtcroom.autoGainControl",
};

/**
 * What to ask getUserMedia for: `kind` from `deviceId` (or the one picked
 * before), the microphone with the sound processing chosen in the settings.
 * room.html's inline start asks the same (a copy: no module has loaded then).
 * @param {"audio" | "video"} kind
 * @param {string} [deviceId]
 * @returns {MediaTrackConstraints}
 */
export function constraints(kind, deviceId) {
  const picked = deviceId ?? localStorage.getItem(kind === "video" ? "rtcroom.camera" : "rtcroom.microphone");
  /** @type {MediaTrackConstraints} */
  const asked = picked ? { deviceId: deviceId ? { exact: deviceId } : picked } : {};
  if (kind === "audio") {
    for (const [name, key] of Object.entries(SOUND_PROCESSING)) {
      /** @type {any} */ (asked)[name] = localStorage.getItem(key) !== "0";
    }
  }
  return asked;
}

/**
 * Remember `deviceId` as the camera or microphone to open next time.
 * @param {"audio" | "video"} kind
 * @param {string} deviceId
 */
export function rememberDevice(kind, deviceId) {
  if (deviceId) localStorage.setItem(kind === "video" ? "rtcroom.camera" : "rtcroom.microphone", deviceId);
}

/**
 * `stream` with its `kind` track taken from `deviceId` (or, with no device,
 * opened again with the settings' constraints), and the track it replaces,
 * for the caller to stop once the new one is in use. The new track keeps
 * the old one's on/off.
 * @param {MediaStream | null} stream
 * @param {"audio" | "video"} kind
 * @param {string} deviceId
 * @returns {Promise<{stream: MediaStream, old: MediaStreamTrack | undefined}>}
 */
export async function withDevice(stream, kind, deviceId) {
  const old = stream?.getTracks().find((t) => t.kind === kind);
  const fresh = (await navigator.mediaDevices.getUserMedia({ [kind]: constraints(kind, deviceId || undefined) })).getTracks()[0];
  if (old) fresh.enabled = old.enabled;
  return { stream: new MediaStream([...(stream?.getTracks().filter((t) => t.kind !== kind) ?? []), fresh]), old };
}

/** Whether single-key shortcuts are on (Settings; on unless turned off). */
export const shortcutsOn = () => localStorage.getItem("rtcroom.shortcuts") !== "0";

/** The speaker (audio output) picked in the settings; "" for the default. */
export const speaker = { id: localStorage.getItem("rtcroom.speaker") ?? "" };

/**
 * Play a video; if the browser blocks sound without a user gesture, play it
 * muted and offer to turn sound on with a click.
 * @param {HTMLVideoElement} video
 */
export function play(video) {
  if (speaker.id && "setSinkId" in video) {
    /** @type {any} */ (video).setSinkId(speaker.id).catch(() => {});
  }
  video.play().catch(() => {
    video.muted = true;
    video.play().catch(() => {});
    showNotice("Your browser blocked sound. Click anywhere to hear the others.", "info");
    document.addEventListener(
      "click",
      () => {
        for (const v of grid.querySelectorAll("video:not([data-local])")) {
          /** @type {HTMLVideoElement} */ (v).muted = false;
        }
        notice.hidden = true;
      },
      { once: true },
    );
  });
}

/**
 * A button whose words say what it will do ("Mute", then "Unmute"): a screen
 * reader announces the one label, with no "pressed" state next to it to
 * contradict it. `data-active` styles the active state.
 * @param {HTMLElement} element
 * @param {boolean} active
 * @param {string} activeLabel the label while active ("Unmute")
 * @param {string} label the label otherwise ("Mute")
 */
export function setAction(element, active, activeLabel, label) {
  element.dataset.active = String(active);
  // Its words (beside its icons, which follow data-active in style.css).
  (element.querySelector(".label") ?? element).textContent = active ? activeLabel : label;
}

/**
 * Say something to screen readers, once, politely: the page's one live
 * region for events (someone joined or left, a message, a file). Progress is
 * never announced.
 * @param {string} text
 */
export function announce(text) {
  const region = $("announcer");
  // Emptied first: the same words again are announced again. What is said
  // in one go (someone left, and so the recording stopped) is said together.
  if (!announcing.length) {
    region.textContent = "";
    setTimeout(() => (region.textContent = announcing.splice(0).join(" ")), 50);
  }
  announcing.push(text);
}

/** @type {string[]} what announce() says next */
const announcing = [];

/**
 * A size (or, with "/s" after it, a rate) in B, kB, MB, GB or TB, with at
 * most 3 significant digits: 785 B, 12.3 kB, 1.23 GB.
 * @param {number} bytes
 */
export function formatBytes(bytes) {
  const units = ["B", "kB", "MB", "GB", "TB"];
  let value = Math.max(0, bytes);
  let unit = 0;
  while (value >= 999.5 && unit < units.length - 1) {
    value /= 1000;
    unit++;
  }
  return `${unit === 0 ? Math.round(value) : Number(value.toPrecision(3))} ${units[unit]}`;
}

/** @param {number} time */
export function formatTime(time) {
  return new Date(time).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}
