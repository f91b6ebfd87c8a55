//! Item images: upload (multipart), re-encoding, serving under /media, deletion, and every
//! refusal with its status and code. Images are made here with the `image` crate.

use crate::helpers::{assert_error, encode, item_body, jpeg_bytes, png_bytes, Browser, TestApp};
use auuction::domain::Role;
use reqwest::StatusCode;
use serde_json::{json, Value};
use sqlx::PgPool;

#[sqlx::test(migrator = "auuction::store::MIGRATOR")]
async fn owner_uploads_an_image_that_is_reencoded_and_served(db: PgPool) {
    let app = TestApp::spawn(db).await;
    app.create_auction().await;
    let donor = app.login_as("donor@example.org", &[Role::Donor]).await;
    let item = donor.create_item(item_body("Quilt")).await;
    let id = item["id"].as_str().unwrap();

    let r = donor
        .upload_image(
            id,
            png_bytes(2400, 1200),
            "quilt.png",
            Some("A blue quilt on a bed"),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let img: Value = r.json().await.unwrap();
    assert!(img["id"].as_str().unwrap().starts_with("img_"));
    assert_eq!(img["alt"], "A blue quilt on a bed");
    assert_eq!(
        (img["width"].as_i64(), img["height"].as_i64()),
        (Some(1600), Some(800))
    );
    let url = img["url"].as_str().unwrap();
    let thumb = img["thumbUrl"].as_str().unwrap();
    assert!(
        url.starts_with("/media/items/") && url.ends_with(".jpg"),
        "{url}"
    );
    // Random names: nothing of the upload's name survives.
    assert!(!url.contains("quilt"));

    let r = app.anonymous().get(url).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.headers()["cache-control"]
        .to_str()
        .unwrap()
        .contains("max-age=31536000"));
    let bytes = r.bytes().await.unwrap();
    assert_eq!(&bytes[..3], &[0xFF, 0xD8, 0xFF], "re-encoded as JPEG");
    let thumb_img =
        image::load_from_memory(&app.anonymous().get(thumb).await.bytes().await.unwrap()).unwrap();
    assert_eq!((thumb_img.width(), thumb_img.height()), (400, 200));

    // A second, JPEG, image; the item lists both in order.
    let r = donor
        .upload_image(
            id,
            jpeg_bytes(300, 200),
            "b.jpg",
            Some("Detail of the stitching"),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let second: Value = r.json().await.unwrap();
    let seen = donor.json(&format!("/api/items/{id}")).await;
    let alts: Vec<&str> = seen["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["alt"].as_str().unwrap())
        .collect();
    assert_eq!(alts, ["A blue quilt on a bed", "Detail of the stitching"]);

    // Delete: the row and the files go.
    let r = donor
        .delete(&format!(
            "/api/items/{id}/images/{}",
            img["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        app.anonymous().get(url).await.status(),
        StatusCode::NOT_FOUND
    );
    assert!(!app
        .dir
        .join("media")
        .join(url.trim_start_matches("/media/"))
        .exists());
    assert_error(
        donor
            .delete(&format!(
                "/api/items/{id}/images/{}",
                img["id"].as_str().unwrap()
            ))
            .await,
        404,
        "not_found",
    )
    .await;
    let seen = donor.json(&format!("/api/items/{id}")).await;
    assert_eq!(seen["images"].as_array().unwrap().len(), 1);
    assert_eq!(seen["images"][0]["id"], second["id"]);
}

#[sqlx::test(migrator = "auuction::store::MIGRATOR")]
async fn bad_uploads_are_refused_with_their_codes(db: PgPool) {
    let app = TestApp::spawn(db).await;
    app.create_auction().await;
    let donor = app.login_as("donor@example.org", &[Role::Donor]).await;
    let item = donor.create_item(item_body("Quilt")).await;
    let id = item["id"].as_str().unwrap();

    // A GIF (detected by content) and a text file named .jpg.
    let gif = b"GIF89a\x01\x00\x01\x00\x80\x00\x00\xff\xff\xff\x00\x00\x00!\xf9\x04\x01\x00\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;".to_vec();
    assert_error(
        donor.upload_image(id, gif, "pic.gif", Some("a gif")).await,
        415,
        "unsupported_image",
    )
    .await;
    assert_error(
        donor
            .upload_image(id, b"hello, I am text".to_vec(), "photo.jpg", Some("text"))
            .await,
        415,
        "unsupported_image",
    )
    .await;
    // A PNG that claims .gif is still a PNG: content decides.
    assert_eq!(
        donor
            .upload_image(id, png_bytes(20, 20), "odd.gif", Some("ok"))
            .await
            .status(),
        StatusCode::CREATED
    );
    // Damaged: starts like a PNG, then stops.
    let mut broken = png_bytes(50, 50);
    broken.truncate(70);
    assert_error(
        donor
            .upload_image(id, broken, "b.png", Some("broken"))
            .await,
        422,
        "invalid_image",
    )
    .await;
    // Alt text is required (absent or blank), and so is the file.
    let b = assert_error(
        donor
            .upload_image(id, png_bytes(10, 10), "a.png", None)
            .await,
        422,
        "validation_failed",
    )
    .await;
    assert_eq!(b["field"], "alt");
    assert_error(
        donor
            .upload_image(id, png_bytes(10, 10), "a.png", Some("   "))
            .await,
        422,
        "validation_failed",
    )
    .await;
    let form = reqwest::multipart::Form::new().text("alt", "nothing attached");
    let b = assert_error(
        donor
            .post_multipart(&format!("/api/items/{id}/images"), form)
            .await,
        422,
        "validation_failed",
    )
    .await;
    assert_eq!(b["field"], "file");
    // Not multipart at all.
    assert_error(
        donor
            .post(&format!("/api/items/{id}/images"), json!({}))
            .await,
        415,
        "unsupported_media_type",
    )
    .await;
    // Too many pixels (41 megapixels of one grey: a small file that would decode huge).
    let big = encode(
        image::DynamicImage::ImageLuma8(image::GrayImage::new(8200, 5000)),
        image::ImageFormat::Png,
    );
    assert!(big.len() < 10 * 1024 * 1024);
    assert_error(
        donor.upload_image(id, big, "big.png", Some("huge")).await,
        413,
        "image_too_large",
    )
    .await;
    // Too many bytes.
    let mut huge = png_bytes(10, 10);
    huge.resize(11 * 1024 * 1024, 0);
    assert_error(
        donor.upload_image(id, huge, "huge.png", Some("huge")).await,
        413,
        "payload_too_large",
    )
    .await;

    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM item_images")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(count, 1);
    let files = std::fs::read_dir(app.dir.join("media").join("items"))
        .unwrap()
        .count();
    assert_eq!(
        files, 2,
        "one image and its thumbnail, nothing left from refusals"
    );
}

#[sqlx::test(migrator = "auuction::store::MIGRATOR")]
async fn who_may_upload_and_delete(db: PgPool) {
    let app = TestApp::spawn(db).await;
    app.create_auction().await;
    let donor = app.login_as("donor@example.org", &[Role::Donor]).await;
    let other = app.login_as("other@example.org", &[Role::Donor]).await;
    let manager = app.login_as("manager@example.org", &[Role::Manager]).await;
    let admin = app.login_as("admin@example.org", &[Role::Admin]).await;
    let guest = app.anonymous();
    let item = donor.create_item(item_body("Quilt")).await;
    let id = item["id"].as_str().unwrap();
    async fn up(b: &Browser, id: &str) -> reqwest::Response {
        b.upload_image(id, png_bytes(10, 10), "a.png", Some("alt"))
            .await
    }

    assert_error(up(&guest, id).await, 401, "unauthenticated").await;
    assert_error(up(&other, id).await, 404, "not_found").await;
    assert_error(up(&manager, id).await, 403, "forbidden").await;
    let mine: Value = up(&donor, id).await.json().await.unwrap();
    let img_url = format!("/api/items/{id}/images/{}", mine["id"].as_str().unwrap());
    assert_error(other.delete(&img_url).await, 404, "not_found").await;
    assert_error(manager.delete(&img_url).await, 403, "forbidden").await;

    // Cookie-authenticated multipart needs the CSRF token like any other write.
    let mut no_csrf = app.log_in("donor@example.org").await;
    no_csrf.csrf = None;
    assert_error(up(&no_csrf, id).await, 403, "csrf_failed").await;
    let token = app.log_in("donor@example.org").await;
    let form = reqwest::multipart::Form::new()
        .part(
            "file",
            reqwest::multipart::Part::bytes(png_bytes(10, 10)).file_name("a.png"),
        )
        .text("alt", "by query token");
    let r = token
        .client
        .post(token.url(&format!(
            "/api/items/{id}/images?csrf_token={}",
            token.csrf.clone().unwrap()
        )))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);

    // Approved: the donor is locked out; an admin may still change images, audited.
    donor
        .post(&format!("/api/items/{id}/submit"), json!({}))
        .await;
    manager
        .post(
            &format!("/api/items/{id}/review"),
            json!({ "decision": "approve" }),
        )
        .await;
    assert_error(up(&donor, id).await, 409, "item_approved").await;
    assert_eq!(up(&admin, id).await.status(), StatusCode::CREATED);
    assert_eq!(
        admin.delete(&img_url).await.status(),
        StatusCode::NO_CONTENT
    );
    let audit = admin
        .json(&format!("/api/audit?entityType=item&entityId={id}"))
        .await;
    assert_eq!(audit["entries"][0]["action"], "item.image_removed_by_admin");
    assert_eq!(audit["entries"][1]["action"], "item.image_added_by_admin");

    // Published: nobody.
    manager
        .post(&format!("/api/items/{id}/publish"), json!({}))
        .await;
    assert_error(up(&donor, id).await, 409, "item_published").await;
    assert_error(up(&admin, id).await, 409, "item_published").await;
}
