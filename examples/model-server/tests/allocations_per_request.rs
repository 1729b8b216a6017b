//! Heap allocations a single-row V1 prediction adds to what the same request
//! costs through a no-op handler on the same router shape: none (the checked
//! row's values, the model inputs and the answer's bytes go into buffers each
//! thread reuses). Counted on this thread only, through the real router, with
//! a counting global allocator.

// Only `small_model` is used here: the in-process server would count its own allocations.
#[allow(dead_code)]
mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{Request, StatusCode};
use axum::routing::post;
use common::small_model;
use tower::ServiceExt;
use trainloop_example_model_server::{AppState, router};

struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: forwards to the system allocator; only counts on the side.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // `try_with`: a thread being torn down has no counter left; it is not ours.
        let _ = ALLOCATIONS.try_with(|count| count.set(count.get() + 1));
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|count| count.set(count.get() + 1));
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static COUNTING: Counting = Counting;

const BODY: &str = r#"{"instances":[{"x":42,"k":"a"}]}"#;

/// Allocations on this thread for one request through `app`, answer read to the end,
/// the fewest of several tries (the first ones warm lazily built parts up).
async fn allocations_of_one_request(app: &Router) -> u64 {
    let mut fewest = u64::MAX;
    for _ in 0..8 {
        let request = Request::post("/v1/models/model:predict")
            .header("content-type", "application/json")
            .body(Body::from(BODY))
            .expect("request");
        let before = ALLOCATIONS.with(Cell::get);
        let response = app.clone().oneshot(request).await.expect("infallible");
        assert_eq!(response.status(), StatusCode::OK);
        let answer = axum::body::to_bytes(response.into_body(), usize::MAX).await.expect("answer");
        let counted = ALLOCATIONS.with(Cell::get) - before;
        assert!(answer.starts_with(b"{\"predictions\":[{\"label\":"), "{answer:?}");
        fewest = fewest.min(counted);
    }
    fewest
}

#[tokio::test(flavor = "current_thread")]
async fn a_v1_prediction_allocates_no_more_than_a_no_op() {
    let state = Arc::new(AppState::new("model"));
    state.set_model(small_model());
    let model_server = router(state);
    let answer = Bytes::from_static(br#"{"predictions":[{"label":"no","probability":0.5}]}"#);
    let noop = Router::new().route("/v1/models/{name}", post(move |_body: Bytes| async move { answer }));

    let prediction = allocations_of_one_request(&model_server).await;
    let baseline = allocations_of_one_request(&noop).await;
    let added = prediction.saturating_sub(baseline);
    println!("allocations per request: prediction {prediction}, no-op {baseline}, added {added}");
    assert_eq!(added, 0, "a V1 prediction allocates {added} times more than the no-op");
}
