// What the call page's modules share: its elements, notices, video tiles and lazy loads.
import { RoomError } from "./rtcroom.js";

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
};

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

/** @param {unknown} err */
export function describe(err) {
  if (err instanceof RoomError) {
    // The site's own words (its join rule refused us, it removed us): as they are.
    if (err.app) return err.message;
    return /** @type {Record<string, string>} */ (MESSAGES)[err.code] ?? err.message;
  }
  if (err instanceof DOMException && err.name === "NotAllowedError") return "Permission was refused.";
  return String(err instanceof Error ? err.message : err);
}

/**
 * A video tile: a <figure> with a <video> and a name.
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
  const label = document.createElement("figcaption");
  label.textContent = name;
  figure.append(video, label);
  if (first) grid.prepend(figure);
  else grid.append(figure);
  layout();
  return { figure, video, label };
}

/**
 * Pick a column count that keeps tiles large for the number of tiles; past
 * LARGE_ROOM tiles (rooms served by the SFU) the grid scrolls instead of
 * shrinking the tiles further.
 */
export function layout() {
  const count = grid.children.length;
  grid.dataset.count = String(count);
  const columns = count <= 1 ? 1 : count <= 4 ? 2 : count <= 9 ? 3 : count <= 16 ? 4 : 5;
  grid.style.setProperty("--columns", String(columns));
  grid.classList.toggle("large", count > LARGE_ROOM);
}

/** Tiles from which the grid scrolls. */
export const LARGE_ROOM = 12;

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
 * @param {HTMLElement} element
 * @param {boolean} pressed
 * @param {string} on
 * @param {string} off
 */
export function setToggle(element, pressed, on, off) {
  element.setAttribute("aria-pressed", String(pressed));
  const label = element.firstChild;
  if (label && label.nodeType === Node.TEXT_NODE) label.textContent = pressed ? on : off;
  else element.textContent = pressed ? on : off;
}

/** @param {number} bytes */
export function formatBytes(bytes) {
  if (bytes >= 1e9) return `${(bytes / 1e9).toFixed(2)} GB`;
  if (bytes >= 1e6) return `${(bytes / 1e6).toFixed(1)} MB`;
  if (bytes >= 1e3) return `${(bytes / 1e3).toFixed(0)} kB`;
  return `${bytes} B`;
}

/** @param {number} time */
export function formatTime(time) {
  return new Date(time).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}
