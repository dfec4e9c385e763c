use crate::helpers::{Backend, spawn_app};

pub async fn health_check_answers_200_when_the_database_answers(backend: Backend) {
    let app = spawn_app(&backend).await;
    let response = app.get("/health_check").await;
    assert_eq!(response.status(), 200);
}

pub async fn health_check_answers_503_when_the_database_does_not(backend: Backend) {
    let app = spawn_app(&backend).await;
    app.db.close().await;
    let response = app.get("/health_check").await;
    assert_eq!(response.status(), 503);
}

pub async fn unknown_pages_get_a_404_page(backend: Backend) {
    let app = spawn_app(&backend).await;
    let response = app.get("/no/such/page").await;
    assert_eq!(response.status(), 404);
    assert!(response.text().await.unwrap().contains("Page not found"));
}
