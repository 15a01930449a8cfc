// The page's connection to the node serving it: one WebSocket, opened again with a growing
// wait when it drops, JSON messages in and out, and signed bytes out.  It knows nothing of
// rooms; the page tells it what to do with each message and when the node seems gone.
// (Galène's protocol.js keeps its connection apart from its page the same way.)

import * as wire from "./wire.js";

const RETRY_FIRST_MS = 500;
const RETRY_MOST_MS = 4000;

export class Connection {
  /**
   * @param {(message: any) => Promise<unknown> | unknown} onMessage each JSON message from the node
   * @param {(failures: number) => boolean} onLost the socket dropped (``failures`` in a row);
   *   return true to stop (the page moves elsewhere), false to try again
   */
  constructor(onMessage, onLost) {
    this.onMessage = onMessage;
    this.onLost = onLost;
    /** @type {WebSocket | null} */
    this.ws = null;
    this.retry = RETRY_FIRST_MS;
    this.failures = 0;
    this.stopped = false;
  }

  /** Open the socket (and again after each drop, until ``stop``). */
  open() {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const ws = new WebSocket(`${scheme}://${location.host}/ws`);
    ws.binaryType = "arraybuffer";
    this.ws = ws;
    ws.onmessage = (event) => {
      if (typeof event.data !== "string") return;
      Promise.resolve(this.onMessage(JSON.parse(event.data))).catch(console.error);
    };
    ws.onopen = () => { this.retry = RETRY_FIRST_MS; this.failures = 0; };
    ws.onclose = () => {
      if (this.ws !== ws || this.stopped) return;
      this.failures += 1;
      if (this.onLost(this.failures)) return;
      setTimeout(() => this.open(), this.retry);
      this.retry = Math.min(this.retry * 2, RETRY_MOST_MS);
    };
  }

  /** No more reconnecting (the guest is out, or moves to another page). */
  stop() {
    this.stopped = true;
  }

  get isOpen() {
    return !!this.ws && this.ws.readyState === WebSocket.OPEN;
  }

  /** Send a JSON message; false if the socket is not open. */
  sendJson(message) {
    if (!this.isOpen || !this.ws) return false;
    this.ws.send(JSON.stringify(message));
    return true;
  }

  /** Sign ``message`` with ``key`` and send it; false if the socket is not open. */
  async sendSigned(key, message) {
    if (!this.isOpen || !this.ws) return false;
    this.ws.send(await wire.seal(key, message));
    return true;
  }
}
