#include "server/http_transport.h"

#include <array>
#include <atomic>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <cstdio>
#include <future>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "engine/common/error.h"

namespace herd::server {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

namespace {

std::chrono::milliseconds ms(double seconds) {
  return std::chrono::milliseconds(static_cast<int64_t>(seconds * 1000.0));
}

std::string error_json(const HttpError& e) {
  HttpResponse r;
  send_error(r, e);
  return r.body;
}

// SSE text as one HTTP/1.1 chunk ("" for no text).
std::string chunk(const std::string& text) {
  if (text.empty()) return "";
  char size[32];
  std::snprintf(size, sizeof size, "%zx\r\n", text.size());
  return size + text + "\r\n";
}

constexpr size_t kHeaderLimit = 64 * 1024;
constexpr size_t kLingerBytes = 4u << 20;  // discarded after an early error before closing
constexpr auto kLinger = std::chrono::seconds(2);
constexpr auto kAbortGrace = std::chrono::seconds(2);  // final deltas after a disconnect

}  // namespace

class Session;

struct HttpTransport::Impl {
  Impl(HttpContext& c, Precheck p, Route r)
      : ctx(c),
        precheck(std::move(p)),
        route(std::move(r)),
        workers(static_cast<size_t>(std::max(1, c.opts.http_workers))),
        acceptor(ioc),
        retry_timer(ioc),
        guard(asio::make_work_guard(ioc)) {}

  void do_accept();
  void reject(tcp::socket s);
  void add(const std::shared_ptr<Session>& s);
  void remove(Session* s);

  HttpContext& ctx;
  Precheck precheck;
  Route route;
  std::atomic<int> busy{0};
  std::mutex mu;
  std::unordered_map<Session*, std::weak_ptr<Session>> sessions;  // guarded by mu
  asio::io_context ioc;
  asio::thread_pool workers;
  tcp::acceptor acceptor;
  asio::steady_timer retry_timer;
  asio::executor_work_guard<asio::io_context::executor_type> guard;
  std::vector<std::thread> threads;
  bool stopped = false;
};

// One connection: a chain of async steps on its strand (every member is touched there only,
// except `notified_`).
class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(HttpTransport::Impl& t, tcp::socket s)
      : t_(t),
        ctx_(t.ctx),
        stream_(std::move(s)),
        hb_timer_(stream_.get_executor()),
        grace_timer_(stream_.get_executor()),
        accepted_(Clock::now()) {}
  ~Session() { t_.remove(this); }

  asio::any_io_executor executor() { return stream_.get_executor(); }
  void start() { wait_request(true); }

  // Shutdown: drop the connection now (a running reply is finished as a disconnect).
  void close() {
    if (reply_ && !finalized_) {
      if (!reply_->stream->done()) ctx_.client.abort(*reply_->stream);
      finalize(true);
    }
    hard_close();
  }

 private:
  // ---- reading a request ----
  void wait_request(bool first) {
    if (closed_) return;
    req_ = HttpRequest{};
    parser_.emplace();
    parser_->header_limit(kHeaderLimit);
    parser_->body_limit(ctx_.opts.max_body_bytes);
    if (buf_.size() > 0) return read_header(Clock::now() + ms(ctx_.opts.header_timeout_s));
    // The first request's header deadline counts from the accept; a keep-alive connection may
    // idle up to --keep-alive-timeout before the next request's first byte.
    Clock::time_point header_deadline;
    if (first) {
      header_deadline = accepted_ + ms(ctx_.opts.header_timeout_s);
      stream_.expires_at(header_deadline);
    } else {
      stream_.expires_after(ms(ctx_.opts.keep_alive_timeout_s));
    }
    stream_.async_read_some(buf_.prepare(8192), [self = shared_from_this(), first, header_deadline](
                                                    beast::error_code ec, size_t n) {
      if (ec) return self->hard_close();
      self->buf_.commit(n);
      self->read_header(first ? header_deadline
                              : Clock::now() + ms(self->ctx_.opts.header_timeout_s));
    });
  }

  void read_header(Clock::time_point deadline) {
    stream_.expires_at(deadline);
    http::async_read_header(
        stream_, buf_, *parser_,
        [self = shared_from_this()](beast::error_code ec, size_t) { self->on_header(ec); });
  }

  void on_header(beast::error_code ec) {
    if (ec == http::error::body_limit) return too_large();
    if (ec == http::error::header_limit) {
      begin_request();
      return reply_early(
          431, {431, "The request headers are too large.", "invalid_request_error", "", ""});
    }
    if (ec && ec.category() == http::make_error_code(http::error::bad_target).category() &&
        ec != http::error::end_of_stream && ec != http::error::partial_message) {
      begin_request();  // malformed request line or headers
      return reply_early(400, {400, "Malformed HTTP request: " + ec.message() + ".",
                               "invalid_request_error", "", ""});
    }
    if (ec) return hard_close();  // timeout or EOF: nobody to answer
    begin_request();
    auto& h = parser_->get();
    req_ = HttpRequest{};
    req_.method = std::string(h.method_string());
    req_.target = std::string(h.target());
    req_.path = req_.target.substr(0, req_.target.find('?'));
    req_.version = h.version() == 10 ? 10 : 11;
    for (const auto& f : h) req_.headers.emplace_back(f.name_string(), f.value());
    keep_alive_ = parser_->keep_alive();
    if (auto early = t_.precheck(req_)) {
      ctx_.client.metrics().count_http(early->status);
      // The body (if any) is never read: the connection cannot carry another request.
      if (!parser_->is_done()) keep_alive_ = false;
      return write_plain(std::move(*early));
    }
    if (parser_->content_length() && *parser_->content_length() > ctx_.opts.max_body_bytes)
      return too_large();
    if (!parser_->is_done() && beast::iequals(req_.header("Expect"), "100-continue")) {
      auto cont =
          std::make_shared<std::string>(req_.version == 10 ? "" : "HTTP/1.1 100 Continue\r\n\r\n");
      stream_.expires_after(ms(ctx_.opts.send_timeout_s));
      return asio::async_write(stream_, asio::buffer(*cont),
                               [self = shared_from_this(), cont](beast::error_code ec, size_t) {
                                 if (ec) return self->hard_close();
                                 self->read_body();
                               });
    }
    read_body();
  }

  void read_body() {
    if (parser_->is_done()) return dispatch();
    stream_.expires_after(ms(ctx_.opts.body_timeout_s));
    http::async_read(stream_, buf_, *parser_,
                     [self = shared_from_this()](beast::error_code ec, size_t) {
                       if (ec == http::error::body_limit) return self->too_large();
                       if (ec) return self->hard_close();
                       self->dispatch();
                     });
  }

  void too_large() {
    begin_request();
    if (req_.method.empty()) {  // the limit tripped while parsing the headers
      auto& h = parser_->get();
      req_.method = std::string(h.method_string());
      req_.path = std::string(h.target());
      req_.version = h.version() == 10 ? 10 : 11;
    }
    reply_early(413, {413,
                      "The request body is larger than the limit of " +
                          std::to_string(ctx_.opts.max_body_bytes) + " bytes.",
                      "invalid_request_error", "", "request_too_large"});
  }

  // An error before the body was read: answer, then close (the rest of the body is discarded
  // for a short while so that the client reads the answer instead of a reset).
  void reply_early(int status, const HttpError& e) {
    HttpResponse r;
    r.status = status;
    send_error(r, e);
    ctx_.client.metrics().count_http(status);
    keep_alive_ = false;
    write_plain(std::move(r));
  }

  void begin_request() {
    if (!busy_) {
      busy_ = true;
      ++t_.busy;
    }
  }
  void end_request() {
    if (busy_) {
      busy_ = false;
      --t_.busy;
    }
  }

  void dispatch() {
    stream_.expires_never();
    req_.body = std::move(parser_->get().body());
    parser_.reset();
    if (req_.method == "GET" || req_.method == "HEAD") {
      // Cheap routes (health, models, metrics) answer on this thread: probes never queue
      // behind slow handlers.
      HttpResponse res;
      t_.route(req_, res);
      return on_response(std::move(res));
    }
    asio::post(t_.workers, [self = shared_from_this()] {
      auto res = std::make_shared<HttpResponse>();
      self->t_.route(self->req_, *res);
      asio::post(self->executor(), [self, res] { self->on_response(std::move(*res)); });
    });
  }

  void on_response(HttpResponse res) {
    if (closed_) {
      if (res.stream) {
        ctx_.client.abort(*res.stream->stream);
        reply_ = res.stream;
        finalize(true);
      }
      return;
    }
    if (res.stream) return follow(std::move(res.stream));
    write_plain(std::move(res));
  }

  // ---- writing a whole response ----
  void write_plain(HttpResponse res) {
    auto msg = std::make_shared<http::response<http::string_body>>(
        static_cast<http::status>(res.status), req_.version == 10 ? 10 : 11);
    if (!res.content_type.empty()) msg->set(http::field::content_type, res.content_type);
    for (const auto& [k, v] : res.headers) msg->set(k, v);
    if (req_.method != "HEAD") msg->body() = std::move(res.body);
    msg->keep_alive(keep_alive_);
    msg->prepare_payload();
    stream_.expires_after(ms(ctx_.opts.send_timeout_s));
    http::async_write(stream_, *msg,
                      [self = shared_from_this(), msg](beast::error_code ec, size_t) {
                        self->end_request();
                        if (ec) return self->hard_close();
                        self->next_request();
                      });
  }

  // After a complete response: the next request on this connection, or a graceful close.
  void next_request() {
    if (closed_) return;
    if (!keep_alive_) return linger_close();
    if (probing_) {
      // The EOF probe is still reading: cancel it; its handler goes on with the next request.
      reuse_after_probe_ = true;
      beast::error_code ec;
      stream_.socket().cancel(ec);
      return;
    }
    stream_.expires_never();
    wait_request(false);
  }

  // ---- a reply that follows an engine stream ----
  void follow(std::shared_ptr<StreamReply> reply) {
    reply_ = std::move(reply);
    finalized_ = tail_queued_ = client_gone_ = false;
    stream_.expires_never();
    if (reply_->sse) {
      chunked_ = req_.version != 10;
      if (!chunked_) keep_alive_ = false;  // HTTP/1.0: the close delimits the body
      std::string head = chunked_ ? "HTTP/1.1 200 OK\r\n" : "HTTP/1.0 200 OK\r\n";
      head += "Content-Type: text/event-stream\r\nCache-Control: no-cache\r\n";
      head += chunked_ ? "Transfer-Encoding: chunked\r\n" : "";
      head += keep_alive_ ? "" : "Connection: close\r\n";
      head += "\r\n";
      std::string first;
      try {
        first = reply_->on_start();
      } catch (const std::exception&) {
        first.clear();
      }
      out_ = head + frame(first);
      last_write_ = Clock::now();
      arm_heartbeat();
    }
    probe();
    std::weak_ptr<Session> weak = shared_from_this();
    reply_->stream->set_notify([weak, ex = executor()] {
      if (auto s = weak.lock())
        if (!s->notified_.exchange(true))
          asio::post(ex, [s] {
            s->notified_ = false;
            s->pump();
          });
    });
    write_out();
  }

  std::string frame(const std::string& text) const { return chunked_ ? chunk(text) : text; }

  // Moves what the engine produced to the client (SSE), or collects it (plain).
  void pump() {
    if (closed_ || finalized_ || !reply_) return;
    std::string text;
    bool done = false;
    std::vector<StreamEvent> ev;
    for (;;) {
      ev.clear();
      auto w = reply_->stream->next(ev, std::chrono::milliseconds(0));
      if (w == RequestStream::Wait::kDone) {
        done = true;
        break;
      }
      if (w != RequestStream::Wait::kEvents) break;
      if (client_gone_) continue;
      try {
        text += reply_->on_events(ev);
      } catch (const std::exception&) {
        // A reply that cannot be rendered cannot be finished: end it as a disconnect would.
        return on_client_gone();
      }
    }
    if (client_gone_) {
      if (done) {
        finalize(true);
        hard_close();
      }
      return;
    }
    if (!reply_->sse) {
      if (!done) return;
      HttpResponse res;
      finalize(false, &res);
      return write_plain(std::move(res));
    }
    if (tail_queued_) return;
    out_ += frame(text);
    if (done) {
      out_ += frame(reply_->on_done());
      if (chunked_) out_ += "0\r\n\r\n";
      tail_queued_ = true;
    }
    write_out();
  }

  void write_out() {
    if (writing_ || closed_ || out_.empty()) return;
    writing_ = true;
    auto data = std::make_shared<std::string>(std::move(out_));
    out_.clear();
    stream_.expires_after(ms(ctx_.opts.send_timeout_s));
    asio::async_write(stream_, asio::buffer(*data),
                      [self = shared_from_this(), data](beast::error_code ec, size_t) {
                        self->writing_ = false;
                        if (self->closed_) return;
                        self->stream_.expires_never();
                        if (ec) return self->on_client_gone();
                        self->last_write_ = Clock::now();
                        if (!self->out_.empty()) return self->write_out();
                        if (self->tail_queued_ && !self->finalized_) {
                          self->finalize(false);
                          self->next_request();
                        }
                      });
  }

  // Reads the socket while a reply runs: EOF or an error means the client went away.
  // (Bytes that arrive, e.g. a pipelined request, are kept for the next request.)
  void probe() {
    if (probing_ || closed_ || buf_.size() >= kHeaderLimit) return;
    probing_ = true;
    stream_.async_read_some(buf_.prepare(4096),
                            [self = shared_from_this()](beast::error_code ec, size_t n) {
                              self->probing_ = false;
                              if (self->closed_) return;
                              if (self->reuse_after_probe_) {
                                self->reuse_after_probe_ = false;
                                if (!ec) self->buf_.commit(n);
                                if (ec && ec != asio::error::operation_aborted)
                                  return self->hard_close();
                                self->stream_.expires_never();
                                return self->wait_request(false);
                              }
                              if (ec) return self->on_client_gone();
                              self->buf_.commit(n);
                              self->probe();
                            });
  }

  void on_client_gone() {
    if (closed_) return;
    if (!reply_ || finalized_) return hard_close();
    if (client_gone_) return;
    client_gone_ = true;
    // Free the KV blocks now; wait (bounded) for the final deltas so that the log line has
    // the tokens the request really used.
    ctx_.client.abort(*reply_->stream);
    grace_timer_.expires_after(kAbortGrace);
    grace_timer_.async_wait([self = shared_from_this()](beast::error_code ec) {
      if (ec || self->finalized_) return;
      self->finalize(true);
      self->hard_close();
    });
    pump();
  }

  void arm_heartbeat() {
    auto period = std::min(ms(ctx_.opts.heartbeat_s), std::chrono::milliseconds(1000));
    hb_timer_.expires_after(period);
    hb_timer_.async_wait([self = shared_from_this()](beast::error_code ec) {
      if (ec || self->closed_ || self->finalized_ || self->tail_queued_ || !self->reply_) return;
      if (!self->writing_ && Clock::now() - self->last_write_ >= ms(self->ctx_.opts.heartbeat_s)) {
        // SSE comment: clients ignore it; a dead peer fails the write.
        self->out_ += self->frame(": keep-alive\n\n");
        self->write_out();
      }
      self->arm_heartbeat();
    });
  }

  void finalize(bool gone, HttpResponse* res = nullptr) {
    if (finalized_ || !reply_) return;
    finalized_ = true;
    reply_->stream->set_notify({});
    hb_timer_.cancel();
    grace_timer_.cancel();
    HttpResponse scratch;
    const bool ends_here = gone || reply_->sse;  // else the response is written next
    finish_stream_reply(ctx_, *reply_, reply_->sse ? nullptr : (res ? res : &scratch), gone);
    reply_.reset();
    if (ends_here) end_request();
  }

  // ---- closing ----
  void linger_close() {
    if (closed_) return;
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
    stream_.expires_after(kLinger);
    if (probing_) return;  // the probe's EOF closes
    linger_read();
  }
  void linger_read() {
    stream_.async_read_some(asio::buffer(scratch_),
                            [self = shared_from_this()](beast::error_code ec, size_t n) {
                              self->lingered_ += n;
                              if (ec || self->lingered_ > kLingerBytes) return self->hard_close();
                              self->linger_read();
                            });
  }

  void hard_close() {
    if (closed_) return;
    if (reply_ && !finalized_) {
      ctx_.client.abort(*reply_->stream);
      finalize(true);
    }
    closed_ = true;
    end_request();
    hb_timer_.cancel();
    grace_timer_.cancel();
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ec);
    stream_.close();
  }

  HttpTransport::Impl& t_;
  HttpContext& ctx_;
  beast::tcp_stream stream_;
  asio::steady_timer hb_timer_, grace_timer_;
  Clock::time_point accepted_;
  beast::flat_buffer buf_;
  std::optional<http::request_parser<http::string_body>> parser_;
  HttpRequest req_;
  bool keep_alive_ = false;
  bool busy_ = false;
  bool closed_ = false;
  // The reply that follows a stream.
  std::shared_ptr<StreamReply> reply_;
  bool chunked_ = false, writing_ = false, tail_queued_ = false, finalized_ = false;
  bool client_gone_ = false, probing_ = false, reuse_after_probe_ = false;
  std::string out_;
  Clock::time_point last_write_;
  std::atomic<bool> notified_{false};
  std::array<char, 16384> scratch_{};
  size_t lingered_ = 0;
};

void HttpTransport::Impl::add(const std::shared_ptr<Session>& s) {
  std::lock_guard<std::mutex> lock(mu);
  sessions[s.get()] = s;
}

void HttpTransport::Impl::remove(Session* s) {
  std::lock_guard<std::mutex> lock(mu);
  sessions.erase(s);
}

void HttpTransport::Impl::do_accept() {
  acceptor.async_accept(asio::make_strand(ioc), [this](beast::error_code ec, tcp::socket s) {
    if (!acceptor.is_open()) return;
    if (ec) {
      // Out of descriptors or the like: back off briefly instead of spinning.
      retry_timer.expires_after(std::chrono::milliseconds(50));
      retry_timer.async_wait([this](beast::error_code e) {
        if (!e && acceptor.is_open()) do_accept();
      });
      return;
    }
    beast::error_code ignore;
    s.set_option(tcp::no_delay(true), ignore);
    size_t open;
    {
      std::lock_guard<std::mutex> lock(mu);
      open = sessions.size();
    }
    if (open >= static_cast<size_t>(std::max(1, ctx.opts.max_connections))) {
      reject(std::move(s));
    } else {
      auto session = std::make_shared<Session>(*this, std::move(s));
      add(session);
      asio::dispatch(session->executor(), [session] { session->start(); });
    }
    do_accept();
  });
}

// Over the connection cap: 503 + Retry-After, then close. The socket is read (and discarded)
// for a moment after the answer so that the client sees the 503 rather than a reset.
void HttpTransport::Impl::reject(tcp::socket s) {
  struct Rejected {
    explicit Rejected(tcp::socket so) : sock(std::move(so)), timer(sock.get_executor()) {}
    tcp::socket sock;
    asio::steady_timer timer;
    std::array<char, 4096> buf{};
  };
  static const std::string msg = [] {
    std::string body = error_json({503, "The server is at its connection limit; retry later.",
                                   "server_error", "", "too_many_connections"});
    return "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
           "Retry-After: 1\r\nConnection: close\r\nContent-Length: " +
           std::to_string(body.size()) + "\r\n\r\n" + body;
  }();
  ctx.client.metrics().count_http(503);
  auto r = std::make_shared<Rejected>(std::move(s));
  asio::async_write(r->sock, asio::buffer(msg), [r](beast::error_code ec, size_t) {
    beast::error_code ignore;
    if (ec) return (void)r->sock.close(ignore);
    r->sock.shutdown(tcp::socket::shutdown_send, ignore);
    r->timer.expires_after(std::chrono::seconds(1));
    r->timer.async_wait([r](beast::error_code) {
      beast::error_code ig;
      r->sock.close(ig);
    });
    struct Drain {
      std::shared_ptr<Rejected> r;
      void operator()(beast::error_code e, size_t) {
        if (e) {
          r->timer.cancel();
          beast::error_code ig;
          r->sock.close(ig);
          return;
        }
        r->sock.async_read_some(asio::buffer(r->buf), Drain{r});
      }
    };
    r->sock.async_read_some(asio::buffer(r->buf), Drain{r});
  });
}

HttpTransport::HttpTransport(HttpContext& ctx, Precheck precheck, Route route)
    : impl_(std::make_unique<Impl>(ctx, std::move(precheck), std::move(route))) {}

HttpTransport::~HttpTransport() { stop(); }

int HttpTransport::start() {
  auto& t = *impl_;
  const auto& o = t.ctx.opts;
  int port = -1;
  try {
    tcp::resolver resolver(t.ioc);
    auto results = resolver.resolve(o.host, std::to_string(o.port),
                                    tcp::resolver::passive | tcp::resolver::numeric_service);
    beast::error_code ec;
    for (const auto& r : results) {
      t.acceptor.close(ec);
      t.acceptor.open(r.endpoint().protocol(), ec);
      if (ec) continue;
      t.acceptor.set_option(asio::socket_base::reuse_address(true), ec);
      t.acceptor.bind(r.endpoint(), ec);
      if (ec) continue;
      t.acceptor.listen(asio::socket_base::max_listen_connections, ec);
      if (ec) continue;
      port = t.acceptor.local_endpoint().port();
      break;
    }
  } catch (const std::exception&) {
    port = -1;
  }
  if (port < 0)
    throw Error("cannot listen on " + o.host + ":" + std::to_string(o.port) +
                " (address in use or not available)");
  t.do_accept();
  for (int i = 0; i < std::max(1, o.http_threads); ++i)
    t.threads.emplace_back([&t] { t.ioc.run(); });
  return port;
}

void HttpTransport::close_listener() {
  auto& t = *impl_;
  if (t.threads.empty()) return;
  std::promise<void> done;
  asio::post(t.ioc, [&] {
    beast::error_code ec;
    t.acceptor.close(ec);
    t.retry_timer.cancel();
    done.set_value();
  });
  done.get_future().wait();
}

int HttpTransport::busy() const { return impl_->busy.load(); }

void HttpTransport::stop() {
  auto& t = *impl_;
  if (t.stopped) return;
  t.stopped = true;
  if (t.threads.empty()) return;
  close_listener();
  // Handlers already running finish (their replies find their connection closed).
  t.workers.join();
  // Take references under the lock, drop them outside it: the last reference of a session
  // runs its destructor, which takes the lock.
  std::vector<std::shared_ptr<Session>> open;
  {
    std::lock_guard<std::mutex> lock(t.mu);
    for (auto& [p, w] : t.sessions)
      if (auto s = w.lock()) open.push_back(std::move(s));
  }
  for (auto& s : open) asio::post(s->executor(), [s] { s->close(); });
  open.clear();
  t.guard.reset();
  // Closed sessions' pending operations complete at once; bounded wait, then stop the loop.
  auto until = Clock::now() + std::chrono::seconds(2);
  for (;;) {
    {
      std::lock_guard<std::mutex> lock(t.mu);
      if (t.sessions.empty()) break;
    }
    if (Clock::now() > until) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  t.ioc.stop();
  for (auto& th : t.threads) th.join();
  t.threads.clear();
}

}  // namespace herd::server
