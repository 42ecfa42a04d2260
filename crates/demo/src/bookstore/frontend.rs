//! `bulkhead-demo bookstore frontend`: the bookstore's HTTP API, calling the catalog
//! (gRPC, upstream `CATALOG`) and reviews (HTTP, upstream `REVIEWS`).
//!
//! | request | answer |
//! |---|---|
//! | `GET /` | a text index of these routes |
//! | `GET /api/books` | `{"books": [...]}`: catalog `ListBooks`, each book with its reviews |
//! | `GET /api/books/<id>` | one book (catalog `GetBook`, with `stock`) with its reviews |
//! | `POST /api/books` | `{"title", "author", "year", "id"?}` → catalog `AddBook`; 201 and the book |
//! | `GET /healthz` | `ok` |
//!
//! A book carries `reviews` (the list), `reviews_version`, and from reviews v2 `rating`
//! or `ratings_error`. The `x-request-id` of the request goes on to both upstreams.
//!
//! Upstream failures are answered, never hidden behind a 500:
//! - an HTTP error answer from reviews (a sidecar's 403 or 503, say) is relayed as is:
//!   status, body, `x-request-id`, `x-bulkhead-error`;
//! - a gRPC status from the catalog maps to `PERMISSION_DENIED` → 403,
//!   `UNAVAILABLE` → 503, `NOT_FOUND` → 404, `INVALID_ARGUMENT` → 400,
//!   `ALREADY_EXISTS` → 409, `DEADLINE_EXCEEDED` → 504, anything else → 502; the body is
//!   `catalog: <status message>` (a sidecar's message names the request id) and the
//!   status's `x-request-id` becomes the answer's;
//! - an upstream that cannot be reached is a 503 (504 on a timeout) naming it.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use http::header::HeaderName;
use http::{HeaderValue, Method, Request, StatusCode};
use hyper::body::Incoming;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Status};

use super::pb::catalog_client::CatalogClient;
use super::pb::{AddBookRequest, Book, GetBookRequest, ListBooksRequest};
use super::web::{self, PROXY_ERROR, Reply, UPSTREAM_TIMEOUT, path_id};
use crate::REQUEST_ID;

/// Where the frontend's upstreams are (`host:port`, the local sidecar's outbound ports).
#[derive(Debug, Clone)]
pub struct Upstreams {
    /// The catalog (gRPC).
    pub catalog: String,
    /// Reviews (HTTP).
    pub reviews: String,
}

const INDEX: &str = "Bulkhead bookstore\n\n\
GET  /api/books        every book with its reviews\n\
GET  /api/books/<id>   one book with its reviews and stock\n\
POST /api/books        add a book: {\"title\": ..., \"author\": ..., \"year\": ...} (admins only)\n\
GET  /healthz          ok\n";

/// The frontend's upstream clients.
#[derive(Debug, Clone)]
struct Frontend {
    catalog: CatalogClient<Channel>,
    reviews: Arc<str>,
}

/// A gRPC client of the catalog at `addr` that connects on first use and reconnects
/// after failures, so a catalog that is briefly down costs only the calls meanwhile.
pub fn catalog_client(addr: &str) -> Result<CatalogClient<Channel>, String> {
    let endpoint = Endpoint::from_shared(format!("http://{addr}"))
        .map_err(|e| format!("`{addr}` is not host:port: {e}"))?
        .connect_timeout(Duration::from_secs(2))
        .timeout(UPSTREAM_TIMEOUT);
    Ok(CatalogClient::new(endpoint.connect_lazy()))
}

/// Serves the frontend on `listener` until `shutdown` completes; fails at once when an
/// upstream address is unusable.
pub async fn serve(
    listener: TcpListener,
    upstreams: &Upstreams,
    shutdown: impl Future<Output = ()>,
) -> Result<(), String> {
    let app = Frontend {
        catalog: catalog_client(&upstreams.catalog)?,
        reviews: upstreams.reviews.as_str().into(),
    };
    let handler = move |req: Request<Incoming>| {
        let app = app.clone();
        async move { app.route(req).await.unwrap_or_else(|e| e) }
    };
    web::serve(listener, "frontend", handler, shutdown).await;
    Ok(())
}

/// An answer, or the error answer that replaces it.
type Answer = Result<Reply, Reply>;

impl Frontend {
    async fn route(&self, req: Request<Incoming>) -> Answer {
        let id = req.headers().get(REQUEST_ID).cloned();
        let path = req.uri().path().to_owned();
        let book = path_id(&path, "/api/books/");
        match (req.method(), path.as_str(), book) {
            (&Method::GET, "/", _) => Ok(web::text(StatusCode::OK, INDEX)),
            (&Method::GET, "/healthz", _) => Ok(web::text(StatusCode::OK, "ok")),
            (&Method::GET, "/api/books", _) => self.list(id.as_ref()).await,
            (&Method::POST, "/api/books", _) => self.add(req, id.as_ref()).await,
            (&Method::GET, _, Some(book)) => self.book(book, id.as_ref()).await,
            (_, "/" | "/healthz" | "/api/books", _) | (_, _, Some(_)) => Err(web::text(
                StatusCode::METHOD_NOT_ALLOWED,
                format!("{} is not allowed on {path}", req.method()),
            )),
            _ => Err(web::text(
                StatusCode::NOT_FOUND,
                format!("no route for {path}; see GET /"),
            )),
        }
    }

    async fn list(&self, id: Option<&HeaderValue>) -> Answer {
        let reply = self
            .catalog
            .clone()
            .list_books(grpc_request(ListBooksRequest {}, id))
            .await
            .map_err(|s| grpc_error(&s))?;
        let mut books = Vec::new();
        for book in reply.into_inner().books {
            let reviews = self.reviews(&book.id, id).await?;
            books.push(book_json(&book, Some(&reviews)));
        }
        Ok(web::json(StatusCode::OK, &json!({ "books": books })))
    }

    async fn book(&self, book: &str, id: Option<&HeaderValue>) -> Answer {
        let request = GetBookRequest {
            id: book.to_owned(),
        };
        let reply = self
            .catalog
            .clone()
            .get_book(grpc_request(request, id))
            .await
            .map_err(|s| grpc_error(&s))?;
        let reviews = self.reviews(book, id).await?;
        Ok(web::json(
            StatusCode::OK,
            &book_json(&reply.into_inner(), Some(&reviews)),
        ))
    }

    async fn add(&self, req: Request<Incoming>, id: Option<&HeaderValue>) -> Answer {
        let bad = |e: String| web::text(StatusCode::BAD_REQUEST, e);
        let body = web::read_body(req.into_body()).await.map_err(bad)?;
        let new: NewBook = serde_json::from_slice(&body)
            .map_err(|e| bad(format!("expected a book as JSON ({{\"title\": ...}}): {e}")))?;
        let request = AddBookRequest {
            id: new.id,
            title: new.title,
            author: new.author,
            year: new.year,
        };
        let book = self
            .catalog
            .clone()
            .add_book(grpc_request(request, id))
            .await
            .map_err(|s| grpc_error(&s))?;
        Ok(web::json(
            StatusCode::CREATED,
            &book_json(&book.into_inner(), None),
        ))
    }

    /// The reviews service's answer for `book`, or the error answer to give instead.
    async fn reviews(&self, book: &str, id: Option<&HeaderValue>) -> Result<Value, Reply> {
        let fetched = web::get(&self.reviews, &format!("/reviews/{book}"), id)
            .await
            .map_err(|e| web::text(e.status(), format!("reviews: {e}")))?;
        if !fetched.status.is_success() {
            return Err(fetched.relay());
        }
        serde_json::from_slice(&fetched.body).map_err(|e| {
            web::text(
                StatusCode::BAD_GATEWAY,
                format!("reviews answered bad JSON: {e}"),
            )
        })
    }
}

/// The body of `POST /api/books`.
#[derive(Debug, Deserialize)]
struct NewBook {
    #[serde(default)]
    id: String,
    title: String,
    #[serde(default)]
    author: String,
    #[serde(default)]
    year: u32,
}

fn grpc_request<T>(message: T, request_id: Option<&HeaderValue>) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    if let Some(id) = request_id.and_then(|id| id.to_str().ok())
        && let Ok(value) = id.parse()
    {
        request.metadata_mut().insert(REQUEST_ID, value);
    }
    request
}

/// The HTTP status for a catalog gRPC status.
pub fn http_status(code: Code) -> StatusCode {
    match code {
        Code::PermissionDenied => StatusCode::FORBIDDEN,
        Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        Code::NotFound => StatusCode::NOT_FOUND,
        Code::InvalidArgument => StatusCode::BAD_REQUEST,
        Code::AlreadyExists => StatusCode::CONFLICT,
        Code::DeadlineExceeded => StatusCode::GATEWAY_TIMEOUT,
        _ => StatusCode::BAD_GATEWAY,
    }
}

/// The answer for a failed catalog call: its message, request id and proxy error kind.
fn grpc_error(status: &Status) -> Reply {
    let metadata = status.metadata();
    let text = |name: &str| metadata.get(name).and_then(|v| v.to_str().ok());
    let message = match status.message() {
        "" => format!("{:?}", status.code()),
        message => message.to_owned(),
    };
    let mut body = format!("catalog: {message}\n");
    if let Some(id) = text(REQUEST_ID).filter(|id| !message.contains(id)) {
        body.push_str(&format!("request id: {id}\n"));
    }
    let mut reply = web::text(http_status(status.code()), body);
    for name in [REQUEST_ID, PROXY_ERROR] {
        if let Some(value) = text(name).and_then(|v| HeaderValue::from_str(v).ok()) {
            reply
                .headers_mut()
                .insert(HeaderName::from_static(name), value);
        }
    }
    reply
}

/// A book as JSON, with what the reviews service said about it.
fn book_json(book: &Book, reviews: Option<&Value>) -> Value {
    let mut out = json!({
        "id": book.id,
        "title": book.title,
        "author": book.author,
        "year": book.year,
    });
    if let Some(stock) = book.stock {
        out["stock"] = json!(stock);
    }
    if let Some(reviews) = reviews {
        out["reviews"] = reviews["reviews"].clone();
        out["reviews_version"] = reviews["version"].clone();
        for key in ["rating", "ratings_error"] {
            if let Some(value) = reviews.get(key) {
                out[key] = value.clone();
            }
        }
    }
    out
}
