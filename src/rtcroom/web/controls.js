// The call page's controls: mute, camera, screen sharing, invite, leave and keyboard shortcuts.
import {
  $,
  addTile,
  announce,
  button,
  describe,
  play,
  releaseCall,
  sentence,
  setAction,
  setTileState,
  shortcutsOn,
  showEnd,
  showNotice,
  showReaction,
  statusLine,
} from "./ui.js";
import { REACTIONS, basePath } from "./rtcroom.js";

/**
 * @typedef {import("./rtcroom.js").RoomClient} RoomClient
 * @typedef {import("./ui.js").Tile} Tile
 */

/**
 * Mute and camera buttons; they act on whatever tracks we send now.
 * @param {RoomClient} client
 * @param {Tile} local
 */
export function mediaControls(client, local) {
  const mic = button("toggle-mic");
  const cam = button("toggle-camera");
  const track = (/** @type {string} */ kind) =>
    client.localStream?.getTracks().find((t) => t.kind === kind);
  const refresh = () => {
    const audio = track("audio");
    const video = track("video");
    mic.disabled = !audio;
    cam.disabled = !video;
    setAction(mic, !!audio && !audio.enabled, "Unmute", "Mute");
    setAction(cam, !!video && !video.enabled, "Camera on", "Camera off");
    setTileState(local, { cameraOff: !!video && !video.enabled, muted: !!audio && !audio.enabled });
    // What the others see on our tile.
    client.setState({
      mic: !audio ? "none" : audio.enabled ? "on" : "off",
      camera: !video ? "none" : video.enabled ? "on" : "off",
    });
  };
  mic.addEventListener("click", () => {
    const audio = track("audio");
    if (audio) audio.enabled = !audio.enabled;
    refresh();
  });
  cam.addEventListener("click", () => {
    const video = track("video");
    if (video) video.enabled = !video.enabled;
    refresh();
  });
  client.addEventListener("localstream", refresh);
  client.addEventListener("mute", (event) => {
    const { kind, by } = /** @type {CustomEvent<{kind: string, by: string}>} */ (event).detail;
    refresh();
    showNotice(sentence(kind === "audio" ? `${by} muted your microphone` : `${by} turned your camera off`), "info");
  });
  refresh();
}

/**
 * Share a screen or a window as an extra stream, next to the camera.
 * @param {RoomClient} client
 * @param {string} name
 * @param {Map<MediaStream, Tile>} screenTiles
 */
export function screenShare(client, name, screenTiles) {
  const toggle = button("toggle-screen");
  if (!navigator.mediaDevices?.getDisplayMedia) {
    toggle.disabled = true;
    toggle.title = "This browser cannot share its screen";
    return;
  }
  /** @type {MediaStream | null} */
  let sharing = null;
  const stop = () => {
    if (!sharing) return;
    client.unpublish(sharing);
    for (const track of sharing.getTracks()) track.stop();
    screenTiles.get(sharing)?.figure.remove();
    screenTiles.delete(sharing);
    sharing = null;
    setAction(toggle, false, "Stop sharing", "Share screen");
    client.setState({ screen: false });
  };
  toggle.addEventListener("click", async () => {
    if (sharing) return stop();
    try {
      const stream = await navigator.mediaDevices.getDisplayMedia({ video: true, audio: false });
      sharing = stream;
      const tile = addTile({ name: `${name} (your screen)`, local: true, screen: true });
      tile.video.srcObject = stream;
      play(tile.video);
      screenTiles.set(stream, tile);
      // The browser's own "Stop sharing" button ends the track.
      for (const track of stream.getTracks()) track.addEventListener("ended", stop);
      client.publish(stream, "screen");
      setAction(toggle, true, "Stop sharing", "Share screen");
      client.setState({ screen: true });
    } catch (err) {
      if (err instanceof DOMException && err.name === "NotAllowedError") return;
      // No screen to capture (headless browsers, some kiosks): say so plainly.
      if (err instanceof DOMException && err.name === "NotFoundError") {
        showNotice("There is no screen or window this browser can share.", "info");
      } else {
        showNotice(`Screen sharing failed: ${describe(err)}`);
      }
    }
  });
}

/**
 * The invite link, the leave button and the keyboard shortcuts.
 * @param {RoomClient} client
 * @param {string} room
 */
export function callControls(client, room) {
  inviteButton(client, room);
  leaveAndShortcuts(client, room);
}

/**
 * Copy the room's link; in a private call (a token per person), say how to invite instead.
 * @param {RoomClient} client
 * @param {string} room
 */
function inviteButton(client, room) {
  const copy = $("copy-link");
  if (client.token) {
    // A link without a token cannot join, and ours is ours alone.
    copy.textContent = "How to invite";
    copy.title = "This call needs a personal link for each person";
    copy.addEventListener("click", () =>
      showNotice(
        "This call is private: each person joins with a link of their own. Ask whoever sent you your link to send one to the people you want to invite.",
        "info",
      ),
    );
    return;
  }
  const invite = `${location.origin}${basePath()}/r/${encodeURIComponent(room)}`;
  copy.addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(invite);
      statusLine.textContent = "Invite link copied";
      announce("Invite link copied.");
    } catch {
      window.prompt("Copy this link and send it:", invite);
    }
  });
}

/**
 * The leave button and the keyboard shortcuts.
 * @param {RoomClient} client
 * @param {string} room
 */
function leaveAndShortcuts(client, room) {
  $("leave").addEventListener("click", () => {
    showEnd({
      title: "You left the call",
      room,
      name: client.name,
      release: () => releaseCall(client),
    });
  });
  window.addEventListener("pagehide", () => client.leave());
  // Single-key shortcuts, unless turned off in the settings (a speech-input
  // user's words must not press buttons: WCAG 2.1.4).
  /** @type {Record<string, string>} */
  const shortcuts = {
    m: "toggle-mic",
    v: "toggle-camera",
    c: "toggle-chat",
    s: "toggle-stats",
    p: "toggle-screen",
    h: "toggle-hand",
    l: "toggle-layout",
  };
  document.addEventListener("keydown", (event) => {
    const target = /** @type {HTMLElement} */ (event.target);
    if (!shortcutsOn() || document.body.classList.contains("ended")) return;
    if (target.closest("input, select, textarea, dialog") || event.ctrlKey || event.metaKey || event.altKey) return;
    const id = shortcuts[event.key];
    if (id) {
      event.preventDefault();
      button(id).click();
    }
  });
}

/** What each reaction is called, for its button and for screen readers. */
const REACTION_NAMES = /** @type {Record<string, string>} */ ({
  "\u{1F44D}": "thumbs up",
  "\u{1F44F}": "applause",
  "\u{1F602}": "laughter",
  "\u{1F62E}": "surprise",
  "\u2764\uFE0F": "love",
  "\u{1F389}": "celebration",
});

/**
 * Raise or lower a hand (h), and react: everyone sees it on our tile.
 * @param {RoomClient} client
 * @param {Tile} local
 */
export function handAndReactions(client, local) {
  const hand = button("toggle-hand");
  const refresh = () => {
    const raised = client.state.hand ?? false;
    setAction(hand, raised, "Lower hand", "Raise hand");
    setTileState(local, { hand: raised });
  };
  hand.addEventListener("click", () => {
    client.setState({ hand: !client.state.hand });
    refresh();
    announce(client.state.hand ? "You raised your hand." : "You lowered your hand.");
  });
  refresh();

  const open = button("open-reactions");
  const menu = $("reactions");
  for (const emoji of REACTIONS) {
    const choice = document.createElement("button");
    choice.type = "button";
    choice.textContent = emoji;
    choice.setAttribute("aria-label", `React with ${REACTION_NAMES[emoji] ?? emoji}`);
    choice.title = REACTION_NAMES[emoji] ?? emoji;
    choice.addEventListener("click", () => {
      client.react(emoji);
      showReaction(local, emoji);
      close();
      open.focus();
      announce(`You reacted ${REACTION_NAMES[emoji] ?? emoji}.`);
    });
    menu.append(choice);
  }
  const close = () => {
    menu.hidden = true;
    open.setAttribute("aria-expanded", "false");
  };
  open.addEventListener("click", () => {
    const opening = menu.hidden;
    menu.hidden = !opening;
    open.setAttribute("aria-expanded", String(opening));
    if (opening) /** @type {HTMLElement} */ (menu.firstElementChild).focus();
  });
  menu.addEventListener("keydown", (event) => {
    if (event.key === "Escape") {
      close();
      open.focus();
    }
  });
}
