//! `bulkhead-demo bookstore catalog`: the `bookstore.v1.Catalog` gRPC service
//! (`proto/bookstore.proto`) over an in-memory list of books. `GetBook` asks the
//! inventory (upstream `INVENTORY`, the [`super::inventory`] line protocol) for the
//! book's stock, and answers `UNAVAILABLE` when it cannot reach it.
//!
//! ```text
//! $ PORT=9001 UPSTREAM_INVENTORY=127.0.0.1:19003 bulkhead-demo bookstore catalog
//! catalog listening on 127.0.0.1:9001 (gRPC)
//! catalog: GetBook 1 -> OK id 0b8e4c1d-...
//! ```

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::TcpListener;
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;
use tonic::{Request, Response, Status};

use super::inventory::{self, Command};
use super::pb::catalog_server::{Catalog, CatalogServer};
use super::pb::{AddBookRequest, Book, GetBookRequest, ListBooksReply, ListBooksRequest};
use crate::REQUEST_ID;

/// How long the inventory gets to answer a stock query.
pub const INVENTORY_TIMEOUT: Duration = Duration::from_secs(3);

/// The books the catalog starts with (ids match [`inventory::INITIAL_STOCK`]).
pub fn initial_books() -> Vec<Book> {
    let book = |id: &str, title: &str, author: &str, year| Book {
        id: id.to_owned(),
        title: title.to_owned(),
        author: author.to_owned(),
        year,
        stock: None,
    };
    vec![
        book("1", "The Left Hand of Darkness", "Ursula K. Le Guin", 1969),
        book("2", "Dune", "Frank Herbert", 1965),
        book("3", "Neuromancer", "William Gibson", 1984),
        book("4", "The Dispossessed", "Ursula K. Le Guin", 1974),
        book("5", "Snow Crash", "Neal Stephenson", 1992),
    ]
}

/// The service: the books, and where the inventory is. Clones share the books.
#[derive(Debug, Clone)]
pub struct CatalogService {
    books: Arc<Mutex<Vec<Book>>>,
    inventory: Arc<str>,
}

impl CatalogService {
    /// A catalog of [`initial_books`] asking the inventory at `inventory` (`host:port`).
    pub fn new(inventory: &str) -> CatalogService {
        CatalogService {
            books: Arc::new(Mutex::new(initial_books())),
            inventory: inventory.into(),
        }
    }

    fn books(&self) -> std::sync::MutexGuard<'_, Vec<Book>> {
        match self.books.lock() {
            Ok(books) => books,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    async fn stock(&self, id: &str) -> Result<u64, Status> {
        let command = Command::Stock(id.to_owned());
        let reply = inventory::ask(&self.inventory, &command, INVENTORY_TIMEOUT)
            .await
            .map_err(|e| Status::unavailable(format!("inventory unavailable: {e}")))?;
        reply
            .strip_prefix("OK ")
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| Status::internal(format!("inventory answered `{reply}`")))
    }
}

/// Logs one call: `catalog: <method> <detail> -> <code> [id <request id>]`.
fn log<T, R>(method: &str, detail: &str, request: &Request<R>, result: &Result<T, Status>) {
    let id = request
        .metadata()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .map(|id| format!(" id {id}"))
        .unwrap_or_default();
    let outcome = match result {
        Ok(_) => "OK".to_owned(),
        Err(status) => format!("{:?}: {}", status.code(), status.message()),
    };
    let call = if detail.is_empty() {
        method.to_owned()
    } else {
        format!("{method} {detail}")
    };
    eprintln!("catalog: {call} -> {outcome}{id}");
}

#[tonic::async_trait]
impl Catalog for CatalogService {
    async fn list_books(
        &self,
        request: Request<ListBooksRequest>,
    ) -> Result<Response<ListBooksReply>, Status> {
        let books = self.books().clone();
        let result = Ok(Response::new(ListBooksReply { books }));
        log("ListBooks", "", &request, &result);
        result
    }

    async fn get_book(&self, request: Request<GetBookRequest>) -> Result<Response<Book>, Status> {
        let id = request.get_ref().id.clone();
        let found = self.books().iter().find(|b| b.id == id).cloned();
        let result = match found {
            None => Err(Status::not_found(format!("no book with id `{id}`"))),
            Some(mut book) => match self.stock(&id).await {
                Ok(stock) => {
                    book.stock = Some(stock);
                    Ok(Response::new(book))
                }
                Err(status) => Err(status),
            },
        };
        log("GetBook", &id, &request, &result);
        result
    }

    async fn add_book(&self, request: Request<AddBookRequest>) -> Result<Response<Book>, Status> {
        let result = self.add(request.get_ref()).map(Response::new);
        let title = request.get_ref().title.clone();
        log("AddBook", &format!("{title:?}"), &request, &result);
        result
    }
}

impl CatalogService {
    fn add(&self, req: &AddBookRequest) -> Result<Book, Status> {
        if req.title.trim().is_empty() {
            return Err(Status::invalid_argument("a book needs a title"));
        }
        let mut books = self.books();
        let id = if req.id.is_empty() {
            let max = books.iter().filter_map(|b| b.id.parse::<u64>().ok()).max();
            (max.unwrap_or(0) + 1).to_string()
        } else {
            req.id.clone()
        };
        if id.contains('/') || id.chars().any(char::is_whitespace) {
            return Err(Status::invalid_argument(format!("`{id}` is not a book id")));
        }
        if books.iter().any(|b| b.id == id) {
            return Err(Status::already_exists(format!("book `{id}` exists")));
        }
        let book = Book {
            id,
            title: req.title.clone(),
            author: req.author.clone(),
            year: req.year,
            stock: None,
        };
        books.push(book.clone());
        Ok(book)
    }
}

/// Serves `service` (gRPC, HTTP/2) on `listener` until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    service: CatalogService,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), tonic::transport::Error> {
    Server::builder()
        .serve_with_incoming_shutdown(
            CatalogServer::new(service),
            TcpIncoming::from(listener),
            shutdown,
        )
        .await
}
