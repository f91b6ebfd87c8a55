//! The integration tests: one binary, one module per area.

mod helpers;

mod auctions;
mod auth;
mod bids;
mod catalog;
mod catalog_pages;
mod demo;
mod deploy_files;
mod donor_pages;
mod durability;
mod events;
mod images;
mod item_page;
mod items;
mod live;
mod migrations;
mod pages;
mod reoffer;
mod users;
