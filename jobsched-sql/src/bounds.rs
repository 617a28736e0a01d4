//! The trait bounds of the generic SQL code, written once.
//!
//! `SqlStore<DB>` works on any sqlx database that takes jobsched's parameter types and decodes its row
//! types — MySQL and SQLite. Rust does not carry a trait's where-clauses to its users, so instead of
//! repeating the list on every generic function, the methods live in `impl` blocks made by these macros.

/// `sql_impl! { [impl-header] items… }`: an `impl` block (inherent or of a trait, attributes allowed in
/// the header) under the bounds every generic SQL method needs.
macro_rules! sql_impl {
    ([$($head:tt)*] $($body:tt)*) => {
        $($head)*
        where
            DB: ::sqlx::Database,
            for<'c> &'c mut DB::Connection: ::sqlx::Executor<'c, Database = DB>,
            DB::Arguments: ::sqlx::IntoArguments<DB>,
            String: $crate::binds::Bind<DB>,
            Option<String>: $crate::binds::Bind<DB>,
            i64: $crate::binds::Bind<DB>,
            i32: $crate::binds::Bind<DB>,
            Option<i32>: $crate::binds::Bind<DB>,
            i8: $crate::binds::Bind<DB>,
            bool: $crate::binds::Bind<DB>,
            ::chrono::NaiveDateTime: $crate::binds::Bind<DB>,
            Option<::chrono::NaiveDateTime>: $crate::binds::Bind<DB>,
            $crate::rows::JobRow: for<'r> ::sqlx::FromRow<'r, DB::Row>,
            $crate::rows::ExecRow: for<'r> ::sqlx::FromRow<'r, DB::Row>,
            $crate::rows::ExecutorRow: for<'r> ::sqlx::FromRow<'r, DB::Row>,
            $crate::accounts::UserRow: for<'r> ::sqlx::FromRow<'r, DB::Row>,
            $crate::accounts::TokenRow: for<'r> ::sqlx::FromRow<'r, DB::Row>,
            $crate::accounts::AuditRow: for<'r> ::sqlx::FromRow<'r, DB::Row>,
            (i64,): for<'r> ::sqlx::FromRow<'r, DB::Row>,
            (String,): for<'r> ::sqlx::FromRow<'r, DB::Row>,
            (String, i64): for<'r> ::sqlx::FromRow<'r, DB::Row>,
            (String, i32, i64): for<'r> ::sqlx::FromRow<'r, DB::Row>,
            (String, i8, i64): for<'r> ::sqlx::FromRow<'r, DB::Row>,
            (String, ::chrono::NaiveDateTime, String): for<'r> ::sqlx::FromRow<'r, DB::Row>,
        {
            $($body)*
        }
    };
}

/// `sql_methods! { fn … }`: inherent methods of `Inner<DB>` (a store's shared state).
macro_rules! sql_methods {
    ($($body:tt)*) => {
        sql_impl! { [impl<DB> $crate::store::Inner<DB>] $($body)* }
    };
}

/// `in_tx!(store, "operation", |conn| body)`: runs `body` (a future using `conn`, the transaction's
/// connection) in a write transaction of `store`, committing on success; the transaction runs again if it
/// lost a lock race.
macro_rules! in_tx {
    ($store:expr, $op:literal, |$conn:ident| $body:expr) => {
        $store
            .retry($op, || async {
                let mut tx = $store.inner().begin().await?;
                let $conn: &mut DB::Connection = &mut tx;
                let out = $body.await?;
                tx.commit().await?;
                Ok(out)
            })
            .await
    };
}
