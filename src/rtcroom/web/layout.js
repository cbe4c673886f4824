// How the tiles are laid out: a grid, or a speaker view (one tile large on
// the stage, the others in a strip) that follows the active speaker; any tile
// pinned to the stage; a shared screen takes the stage; in a call of two,
// your own video a small tile you can move to another corner or hide.
import { $, announce, button, grid, setAction } from "./ui.js";

/**
 * @typedef {import("./rtcroom.js").RoomClient} RoomClient
 * @typedef {import("./ui.js").Tile} Tile
 */

/** The corners the self view moves through, in order. */
const CORNERS = ["bottom-right", "bottom-left", "top-left", "top-right"];

/**
 * @param {RoomClient} client
 * @param {Tile} local our camera's tile
 */
export function layouts(client, local) {
  const toggle = button("toggle-layout");
  const showSelf = button("show-self");
  let speakerView = false;
  /** @type {HTMLElement | null} */
  let pinned = null;
  /** @type {HTMLElement | null} the latest screen shared by someone else */
  let screen = null;
  /** the peer id of whoever spoke last */
  let speaker = "";
  let corner = 0;

  const figures = () => /** @type {HTMLElement[]} */ ([...grid.querySelectorAll(":scope > figure.tile")]);
  const remoteCameras = () => figures().filter((f) => !f.classList.contains("local") && !f.classList.contains("screen"));

  /** The tile on the stage in the speaker view. */
  const stageTile = () => {
    if (pinned?.isConnected) return pinned;
    if (screen?.isConnected) return screen;
    const talking = speaker && grid.querySelector(`:scope > figure.tile[data-peer-id="${CSS.escape(speaker)}"]:not(.screen)`);
    return /** @type {HTMLElement | null} */ (talking) ?? remoteCameras()[0] ?? local.figure;
  };

  const apply = () => {
    const stage = speakerView ? stageTile() : null;
    for (const figure of figures()) {
      figure.classList.toggle("on-stage", figure === stage);
      const pin = /** @type {HTMLButtonElement | null} */ (figure.querySelector(":scope > .pin"));
      if (pin) {
        const name = figure.querySelector("figcaption")?.textContent ?? "";
        const isPinned = figure === pinned;
        pin.setAttribute("aria-pressed", String(isPinned));
        pin.setAttribute("aria-label", `Pin ${name} to the stage`);
        pin.title = isPinned ? `Unpin ${name}` : `Pin ${name} to the stage`;
      }
    }
    grid.classList.toggle("speaker", speakerView);
    const screens = figures().some((f) => f.classList.contains("screen"));
    grid.classList.toggle("one-to-one", !speakerView && !screens && remoteCameras().length === 1);
    setAction(toggle, speakerView, "Grid view", "Speaker view");
  };

  /** @param {HTMLElement} figure */
  const addPin = (figure) => {
    if (figure.querySelector(":scope > .pin")) return;
    const pin = document.createElement("button");
    pin.type = "button";
    pin.className = "pin";
    pin.textContent = "Pin";
    pin.addEventListener("click", () => {
      const name = figure.querySelector("figcaption")?.textContent ?? "";
      if (pinned === figure) {
        pinned = null;
        announce(`${name} unpinned.`);
      } else {
        pinned = figure;
        speakerView = true;
        announce(`${name} pinned to the stage.`);
      }
      apply();
    });
    figure.append(pin);
  };

  // Our own camera in a call of two: move it to another corner, or hide it.
  const actions = document.createElement("div");
  actions.className = "self-actions";
  const move = smallButton("Move", "Move your video to another corner", () => {
    corner = (corner + 1) % CORNERS.length;
    local.figure.dataset.corner = CORNERS[corner];
  });
  const hide = smallButton("Hide", "Hide your video (the others still see it)", () => {
    local.figure.classList.add("self-hidden");
    showSelf.hidden = false;
    showSelf.focus();
  });
  hide.setAttribute("aria-label", "Hide your video");
  showSelf.addEventListener("click", () => {
    local.figure.classList.remove("self-hidden");
    showSelf.hidden = true;
    hide.focus();
  });
  actions.append(move, hide);
  local.figure.append(actions);
  local.figure.dataset.corner = CORNERS[corner];

  toggle.addEventListener("click", () => {
    speakerView = !speakerView;
    apply();
    announce(speakerView ? "Speaker view." : "Grid view.");
  });
  grid.addEventListener("activespeaker", (event) => {
    speaker = /** @type {CustomEvent<{id: string}>} */ (event).detail.id;
    if (speakerView) apply();
  });
  // Tiles come and go: each gets a pin; a screen someone shares takes the stage.
  new MutationObserver((changes) => {
    for (const change of changes) {
      for (const node of change.addedNodes) {
        if (!(node instanceof HTMLElement) || !node.matches("figure.tile")) continue;
        if (!node.classList.contains("local") || node.classList.contains("screen")) addPin(node);
        if (node.classList.contains("screen") && !node.classList.contains("local")) {
          screen = node;
          speakerView = true;
        }
      }
      for (const node of change.removedNodes) {
        if (node === pinned) pinned = null;
      }
    }
    apply();
  }).observe(grid, { childList: true });
  for (const figure of figures()) {
    if (!figure.classList.contains("local") || figure.classList.contains("screen")) addPin(figure);
  }
  $("toggle-layout").hidden = false;
  apply();
}

/**
 * A small button on a tile: a word on screen, `label` for screen readers and as its tooltip.
 * @param {string} word
 * @param {string} label
 * @param {() => void} onClick
 */
function smallButton(word, label, onClick) {
  const small = document.createElement("button");
  small.type = "button";
  small.textContent = word;
  small.setAttribute("aria-label", label);
  small.title = label;
  small.addEventListener("click", onClick);
  return small;
}
