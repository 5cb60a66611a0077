// A WebSocket to one conversation (or to the home page's /ws/home/) that reconnects by itself
// with backoff.
//
// The server keeps generating while no socket is connected and sends a snapshot of the
// partial answer on (re)connect, so a dropped socket only needs a new one, not a resend.
// The close codes the server uses for "this will not work again" (docs/ARCHITECTURE.md:
// 4401 not signed in, 4403 access withdrawn, 4404 no such conversation) end the retries:
// without that, a deleted conversation kept reconnecting forever.
// Exposes window.ConversationSocket.
(function () {
  "use strict";

  const BASE_DELAY_MS = 500;
  const MAX_DELAY_MS = 15000;
  const FINAL_CLOSE_CODES = new Set([4401, 4403, 4404]);

  class ConversationSocket {
    /**
     * @param {string} url ws:// or wss:// address of /ws/c/<id>/
     * @param {{onEvent: Function, onOpen?: Function, onStatus?: Function, onFinalClose?: Function}} handlers
     *   onEvent(event) for each JSON frame; onOpen(isReconnect); onStatus("connecting" |
     *   "open" | "reconnecting" | "closed"); onFinalClose(code) when the server closed with
     *   4401, 4403 or 4404 (no retry follows).
     */
    constructor(url, handlers) {
      this.url = url;
      this.handlers = handlers;
      this.socket = null;
      this.queue = []; // Frames sent while disconnected go out on the next open.
      this.attempt = 0;
      this.everOpened = false;
      this.closedByUs = false;
      this.retryTimer = null;
      this.status = "closed";

      this.reconnectNow = this.reconnectNow.bind(this);
      window.addEventListener("online", this.reconnectNow);
      document.addEventListener("visibilitychange", () => {
        if (document.visibilityState === "visible") this.reconnectNow();
      });
    }

    static urlFor(conversationId) {
      const scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
      return `${scheme}//${window.location.host}/ws/c/${encodeURIComponent(conversationId)}/`;
    }

    /** The page without an open conversation: it only hears the user's sidebar frames. */
    static homeUrl() {
      const scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
      return `${scheme}//${window.location.host}/ws/home/`;
    }

    connect() {
      this.closedByUs = false;
      clearTimeout(this.retryTimer);
      this.retryTimer = null;
      this.setStatus(this.everOpened ? "reconnecting" : "connecting");

      let socket;
      try {
        socket = new WebSocket(this.url);
      } catch (error) {
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
        let event;
        try {
          event = JSON.parse(message.data);
        } catch (error) {
          return; // Not ours to interpret.
        }
        if (event && typeof event.type === "string") this.handlers.onEvent(event);
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
      clearTimeout(this.retryTimer);
      this.retryTimer = setTimeout(() => this.connect(), exponential * jitter);
    }

    // Skip the remaining backoff (the network came back, the tab became visible).
    reconnectNow() {
      if (this.closedByUs || this.socket || this.retryTimer === null) return;
      this.attempt = 0;
      this.connect();
    }

    get isOpen() {
      return this.socket !== null && this.socket.readyState === WebSocket.OPEN;
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
      clearTimeout(this.retryTimer);
      this.retryTimer = null;
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

  window.ConversationSocket = ConversationSocket;
})();
