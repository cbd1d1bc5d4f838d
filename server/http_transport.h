// HttpTransport: the HTTP/1.1 sockets of HttpServer, on Boost.Beast + Boost.Asio (the only
// server/ file that knows them). One io_context runs on a small fixed pool of threads
// (--http-threads); every connection is a state machine on its own strand, so an open socket
// (idle keep-alive, slow client, SSE stream) costs no thread. Route handlers run on a separate
// bounded pool (--http-workers) so a slow handler never stalls other connections' I/O.
//
// Per connection: the request line and headers must arrive within --header-timeout (total, not
// per byte), the body within --body-timeout, and an idle keep-alive connection is closed after
// --keep-alive-timeout. `precheck` (API key, draining) runs as soon as the headers are in,
// before any body is read; a body over --max-body-bytes (Content-Length or chunked) is answered
// 413 as soon as the limit is crossed, without buffering the rest. Beyond --max-connections a
// new connection is answered 503 with Retry-After: 1 and closed.
//
// A reply that follows a RequestStream (HttpResponse::stream) is driven by the stream's notify
// hook: no thread waits on it. While it runs the socket is read for EOF, so a client that goes
// away gets its engine requests aborted at once (SSE or not).
#pragma once

#include <functional>
#include <memory>
#include <optional>

#include "server/http_context.h"

namespace herd::server {

class HttpTransport {
 public:
  // Answers a request whose headers are complete (body not read yet), or nullopt to go on.
  using Precheck = std::function<std::optional<HttpResponse>(const HttpRequest&)>;
  // Answers a complete request (runs on a worker thread; GET requests on the I/O thread).
  using Route = std::function<void(const HttpRequest&, HttpResponse&)>;

  HttpTransport(HttpContext& ctx, Precheck precheck, Route route);
  ~HttpTransport();

  // Binds ctx.opts.host:port (0: any free port), starts the threads; returns the bound port.
  // Throws herd::Error when the address cannot be bound.
  int start();
  // Stops accepting (the listening socket is closed when this returns).
  void close_listener();
  // Connections with a request in progress (from its headers to the end of its reply).
  int busy() const;
  // Closes every connection and joins the threads. Idempotent.
  void stop();

  struct Impl;  // the io_context, acceptor, worker pool and open connections (.cc)

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace herd::server
