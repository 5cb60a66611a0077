// A WebSocket to one conversation (or to the home page's /ws/home/) that reconnects by itself
// with backoff.
//
// The server keeps generating while no socket is connected and sends a snapshot of the
// partial answer on (re)connect, so a dropped socket only needs a new one, not a resend.
// The close codes the server uses for "this will not work again" (docs/ARCHITECTURE.md:
// 4401 not signed in, 4403 access withdrawn, 4404 no such conversation) end the retries:
// without that, a deleted conversation kept reconnecting forever.

const BASE_DELAY_MS = 500;
const MAX_DELAY_MS = 15000;
export const FINAL_CLOSE_CODES = new Set([4401, 4403, 4404]);

// ws:// or wss:// for a path on this page's host.
export function socketUrl(location, path) {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${location.host}${path}`;
}

export class ConversationSocket {
  /**
   * @param {string} url ws:// or wss:// address
   * @param {{onEvent: Function, onOpen?: Function, onStatus?: Function, onFinalClose?: Function}} handlers
   *   onEvent(frame) for each JSON frame; onOpen(isReconnect); onStatus("connecting" |
   *   "open" | "reconnecting" | "closed"); onFinalClose(code) when the server closed with
   *   4401, 4403 or 4404 (no retry follows).
   * @param {{window: Window, WebSocket?: Function}} environment where it runs (tests pass fakes)
   */
  constructor(url, handlers, environment) {
    this.url = url;
    this.handlers = handlers;
    this.window = environment.window;
    this.WebSocket = environment.WebSocket || environment.window.WebSocket;
    this.socket = null;
    this.queue = []; // Frames sent while disconnected go out on the next open.
    this.attempt = 0;
    this.everOpened = false;
    this.closedByUs = false;
    this.retryTimer = null;
    this.status = "closed";

    this.reconnectNow = this.reconnectNow.bind(this);
    this.onVisibility = () => {
      if (this.window.document.visibilityState === "visible") this.reconnectNow();
    };
    this.window.addEventListener("online", this.reconnectNow);
    this.window.document.addEventListener("visibilitychange", this.onVisibility);
  }

  connect() {
    this.closedByUs = false;
    this.window.clearTimeout(this.retryTimer);
    this.retryTimer = null;
    this.setStatus(this.everOpened ? "reconnecting" : "connecting");

    let socket;
    try {
      socket = new this.WebSocket(this.url);
    } catch {
      this.scheduleRetry();
      return;
    }
    this.socket = socket;

    socket.addEventListener("open", () => {
      if (socket !== this.socket) return;
      const isReconnect = this.everOpened;
      this.everOpened = true;
      this.attempt = 0;
      this.setStatus("open");
      const pending = this.queue.splice(0);
      for (const frame of pending) socket.send(frame);
      if (this.handlers.onOpen) this.handlers.onOpen(isReconnect);
    });

    socket.addEventListener("message", (message) => {
      if (socket !== this.socket) return;
      let frame;
      try {
        frame = JSON.parse(message.data);
      } catch {
        return; // Not ours to interpret.
      }
      if (frame && typeof frame.type === "string") this.handlers.onEvent(frame);
    });

    socket.addEventListener("close", (event) => {
      if (socket !== this.socket) return;
      this.socket = null;
      if (this.closedByUs) {
        this.setStatus("closed");
      } else if (FINAL_CLOSE_CODES.has(event.code)) {
        this.closedByUs = true; // Retrying would be refused the same way.
        this.queue = [];
        this.setStatus("closed");
        if (this.handlers.onFinalClose) this.handlers.onFinalClose(event.code);
      } else {
        this.scheduleRetry();
      }
    });
    // "error" is always followed by "close": retrying is handled there.
  }

  scheduleRetry() {
    this.setStatus(this.everOpened ? "reconnecting" : "connecting");
    const exponential = Math.min(MAX_DELAY_MS, BASE_DELAY_MS * 2 ** this.attempt);
    const jitter = 0.75 + Math.random() * 0.5; // Spread reconnects after a server restart.
    this.attempt += 1;
    this.window.clearTimeout(this.retryTimer);
    this.retryTimer = this.window.setTimeout(() => this.connect(), exponential * jitter);
  }

  // Skip the remaining backoff (the network came back, the tab became visible).
  reconnectNow() {
    if (this.closedByUs || this.socket || this.retryTimer === null) return;
    this.attempt = 0;
    this.connect();
  }

  get isOpen() {
    return this.socket !== null && this.socket.readyState === this.WebSocket.OPEN;
  }

  /** Send a JSON frame now, or queue it for the next open. */
  send(payload) {
    const frame = JSON.stringify(payload);
    if (this.isOpen) {
      this.socket.send(frame);
      return true;
    }
    this.queue.push(frame);
    return false;
  }

  /** Forget queued frames of one type (for example a stop that is no longer wanted). */
  dropQueued(type) {
    this.queue = this.queue.filter((frame) => JSON.parse(frame).type !== type);
  }

  close() {
    this.closedByUs = true;
    this.window.clearTimeout(this.retryTimer);
    this.retryTimer = null;
    this.window.removeEventListener("online", this.reconnectNow);
    this.window.document.removeEventListener("visibilitychange", this.onVisibility);
    if (this.socket) this.socket.close(1000);
    this.socket = null;
    this.setStatus("closed");
  }

  setStatus(status) {
    if (status === this.status) return;
    this.status = status;
    if (this.handlers.onStatus) this.handlers.onStatus(status);
  }
}
