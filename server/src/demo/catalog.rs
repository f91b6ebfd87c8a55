//! The demo's catalog: about forty items over every type and category, hosted events with
//! capacities and each address privacy, some featured, with drawn pictures.
//!
//! Items pass the same rules as a donor's (`domain::catalog::validate_item`,
//! `domain::hosted_event::validate_event`) and pictures the same pipeline as an upload
//! (`media::process`, `media::store`), so the demo cannot hold what the product would refuse.
// Money literals are written dollars_cents (`125_00` is $125.00), like prices.
#![allow(clippy::inconsistent_digit_grouping)]

use std::path::Path;

use anyhow::Context;
use chrono::{DateTime, Duration, Utc};

use crate::{
    demo::pictures,
    domain::{
        catalog::{validate_item, ItemInput, ItemStatus, ItemType},
        hosted_event::{validate_event, Address, AddressPrivacy, EventInput},
        AuctionId, CategoryId, Cents, ItemId, UserId,
    },
    media,
    store::{events, item_images, items},
};

use ItemType::{Competitive as C, FixedPriceItem as F, Service as S};

/// One demo item: title, type, category id, price (cents), fair market value (cents),
/// quantity, tags, featured, description, restrictions.
struct Demo {
    title: &'static str,
    kind: ItemType,
    category: i64,
    price: i64,
    fmv: Option<i64>,
    quantity: i64,
    tags: &'static [&'static str],
    featured: bool,
    description: &'static str,
    restrictions: Option<&'static str>,
}

const fn d(
    title: &'static str,
    kind: ItemType,
    category: i64,
    price: i64,
    quantity: i64,
    tags: &'static [&'static str],
    description: &'static str,
) -> Demo {
    Demo {
        title,
        kind,
        category,
        price,
        fmv: None,
        quantity,
        tags,
        featured: false,
        description,
        restrictions: None,
    }
}

impl Demo {
    const fn featured(mut self) -> Demo {
        self.featured = true;
        self
    }
    const fn fmv(mut self, cents: i64) -> Demo {
        self.fmv = Some(cents);
        self
    }
    const fn restrict(mut self, text: &'static str) -> Demo {
        self.restrictions = Some(text);
        self
    }
}

#[rustfmt::skip]
const ITEMS: &[Demo] = &[
    d("Signed Hymnal Collection", C, 3, 80_00, 1, &["books", "music"], "Three hymnals signed by the choir, with a note from the director.").fmv(45_00),
    d("Hand-Thrown Pottery Set", C, 3, 120_00, 1, &["handmade", "kitchen"], "Four mugs and a pitcher glazed in river blue by Ruth Alvarez.").fmv(150_00).featured(),
    d("Woodworked Cutting Board", C, 3, 60_00, 1, &["handmade", "kitchen"], "End-grain walnut and maple, oiled and ready for bread.").fmv(90_00),
    d("Vintage Bicycle, Restored", C, 3, 150_00, 1, &["outdoors"], "A 1970s three-speed, new tyres, bell and basket.").fmv(220_00),
    d("Family Portrait Session", C, 4, 175_00, 1, &["photography", "family"], "An hour outdoors with our member photographer and twenty edited pictures.").fmv(300_00).restrict("Book by September 30. Weekends only.").featured(),
    d("Sailing Afternoon on the Lake", C, 2, 250_00, 1, &["outdoors", "lake"], "Three hours under sail for up to four, life jackets and lemonade included.").fmv(400_00).restrict("June to August; weather permitting; party of up to 4."),
    d("Orchard Picking Day", C, 2, 90_00, 1, &["family", "outdoors", "kid friendly"], "A morning in the Hendersons' orchard and a bushel to take home.").restrict("September or October."),
    d("Beach House Weekend", C, 2, 400_00, 1, &["travel"], "Two nights at a cottage steps from the sand; sleeps six.").fmv(650_00).restrict("Not available July 1 to August 15. Expires next May.").featured(),
    d("Church Cookbook, First Edition", F, 3, 25_00, 30, &["books", "kitchen"], "Our own recipes, from Nana Jo's cornbread to the youth group's chili.").fmv(15_00),
    d("Advent Wreath Kit", F, 3, 35_00, 15, &["handmade", "holiday"], "Everything to make your family's wreath: ring, candles and greens.").fmv(20_00),
    d("Knitted Baby Blanket", F, 3, 45_00, 6, &["handmade", "baby"], "Soft cotton blankets from the knitting circle, in cream or sage."),
    d("Jar of Local Honey", F, 3, 12_00, 40, &["food", "local"], "Wildflower honey from the hives behind the parish hall.").featured(),
    d("Stained-Glass Suncatcher", F, 3, 30_00, 10, &["handmade", "art"], "A small dove in blue and gold glass to hang in a window."),
    d("Youth Group Car Wash Pass", F, 4, 20_00, 50, &["youth", "car"], "Five washes by the youth group, any Saturday this summer.").restrict("Saturdays, May to August."),
    d("Lawn Mowing for a Month", S, 4, 80_00, 3, &["yard", "help"], "Four Saturday mowings by the Kim brothers, clippings bagged."),
    d("Tax Return Preparation", S, 4, 150_00, 2, &["finance", "help"], "A simple household return prepared by a retired accountant.").fmv(250_00).restrict("Individual returns only; by April 1."),
    d("Spanish Conversation Lessons", S, 4, 100_00, 2, &["lessons", "language"], "Six one-hour conversations over coffee with Señora Ruiz."),
    d("Computer Tune-Up and Help", S, 4, 60_00, 4, &["technology", "help"], "Two hours of patient help with a computer, phone or tablet."),
    d("Sourdough Bread Class", S, 4, 40_00, 8, &["lessons", "kitchen", "food"], "Learn to keep a starter and bake a loaf; take both home.").featured(),
    d("Piano Tuning", S, 4, 90_00, 2, &["music", "home"], "A full tuning by a certified technician, within twenty miles."),
    d("House Cleaning, Spring Edition", S, 4, 120_00, 2, &["home", "help"], "Four hours of deep cleaning by two volunteers who love it."),
    d("Dog Walking for Two Weeks", S, 4, 70_00, 3, &["pets", "help"], "Weekday walks, thirty minutes each, for one friendly dog."),
    d("Guitar Lessons for Beginners", S, 4, 110_00, 2, &["music", "lessons"], "Five lessons for any age; a loaner guitar if needed."),
    d("Birdwatching Walk", S, 2, 15_00, 12, &["outdoors", "nature"], "A dawn walk by the marsh with binoculars and a field guide."),
    d("Quilting Workshop", S, 2, 50_00, 6, &["lessons", "handmade"], "A Saturday with the sewing circle: make a small quilted table runner."),
    d("Front-Row Christmas Concert Seats", F, 2, 60_00, 4, &["music", "holiday"], "Two reserved seats at the front for the Christmas concert."),
    d("Hike and Picnic with the Pastor", C, 2, 100_00, 1, &["outdoors", "family"], "A morning hike on the ridge trail and a picnic lunch for four.").restrict("Party of up to 4; a Saturday in June."),
    d("Handmade Rocking Chair", C, 3, 300_00, 1, &["handmade", "furniture"], "Oak, pegged and finished by hand over a winter.").fmv(600_00),
    d("Garden Vegetable Box Share", F, 3, 75_00, 10, &["food", "garden", "local"], "A box of vegetables every other week from July to September."),
];

/// One hosted event: title, description, price per seat, seats, days ahead, hours,
/// location label, city, privacy, featured, accessibility.
struct DemoEvent {
    title: &'static str,
    description: &'static str,
    price: i64,
    seats: i64,
    days: i64,
    hours: i64,
    place: &'static str,
    city: &'static str,
    privacy: AddressPrivacy,
    featured: bool,
    access: &'static str,
}

#[rustfmt::skip]
const EVENTS: &[DemoEvent] = &[
    DemoEvent { title: "Italian Supper in the Garden", description: "Four courses under the pergola: antipasti, handmade pasta, roast chicken, tiramisu.", price: 65_00, seats: 12, days: 30, hours: 3, place: "The Morettis' garden", city: "Knoxville", privacy: AddressPrivacy::ShowFullToAttendees, featured: true, access: "Level path from the street; one step to the patio." },
    DemoEvent { title: "Pancake Breakfast for Families", description: "Stacks of pancakes, fruit and cocoa; crafts for the children.", price: 15_00, seats: 40, days: 14, hours: 2, place: "Fellowship Hall", city: "Knoxville", privacy: AddressPrivacy::ShowCityOnly, featured: false, access: "Step-free entrance and accessible restrooms." },
    DemoEvent { title: "Wine and Cheese Tasting", description: "Six wines and six cheeses, with a sommelier who explains without fuss.", price: 45_00, seats: 16, days: 21, hours: 2, place: "A member's home", city: "Maryville", privacy: AddressPrivacy::HideAll, featured: false, access: "Stairs to the front door." },
    DemoEvent { title: "Summer Barbecue by the Lake", description: "Smoked brisket, corn, games on the lawn and a swim for the brave.", price: 30_00, seats: 30, days: 45, hours: 4, place: "The Okafors' lake house", city: "Lenoir City", privacy: AddressPrivacy::ShowFullToAttendees, featured: true, access: "Grass lawn; a ramp to the deck." },
    DemoEvent { title: "Game Night and Chili", description: "Board games, two kinds of chili and cornbread. Bring your competitive streak.", price: 20_00, seats: 20, days: 10, hours: 3, place: "The Parish House", city: "Knoxville", privacy: AddressPrivacy::ShowCityOnly, featured: false, access: "Step-free entrance." },
    DemoEvent { title: "Afternoon Tea for Two", description: "Scones, sandwiches and a proper pot of tea in Mrs. Patel's sunroom.", price: 35_00, seats: 6, days: 25, hours: 2, place: "A sunroom in Sequoyah Hills", city: "Knoxville", privacy: AddressPrivacy::ShowFullToAttendees, featured: false, access: "Two steps at the door." },
];

fn at(days: i64, hour: u32, now: DateTime<Utc>) -> DateTime<Utc> {
    let day = (now + Duration::days(days)).date_naive();
    day.and_hms_opt(hour, 0, 0)
        .map(|t| t.and_utc())
        .unwrap_or(now + Duration::days(days))
}

/// Loads the demo catalog into `auction` for `donor`; pictures go under `media_dir`.
/// Returns how many items were added.
pub async fn load(
    db: &sqlx::PgPool,
    auction: AuctionId,
    donor: UserId,
    media_dir: &Path,
) -> anyhow::Result<usize> {
    let now = Utc::now();
    let mut added = 0;
    for (n, demo) in ITEMS.iter().enumerate() {
        let input = ItemInput {
            item_type: Some(demo.kind),
            title: demo.title.into(),
            description: Some(demo.description.into()),
            donor_notes: None,
            restrictions: demo.restrictions.map(str::to_string),
            tags: demo.tags.iter().map(|t| t.to_string()).collect(),
            opening_bid: Cents(demo.price),
            bid_increment: None,
            buy_now_price: None,
            fair_market_value: demo.fmv.map(Cents),
            quantity_total: demo.quantity,
        };
        let id = insert(db, auction, donor, demo.category, input, demo.featured).await?;
        add_picture(db, media_dir, id, demo.title, n).await?;
        added += 1;
    }
    for (n, e) in EVENTS.iter().enumerate() {
        let input = ItemInput {
            item_type: Some(ItemType::FixedPriceEvent),
            title: e.title.into(),
            description: Some(e.description.into()),
            donor_notes: Some("We look forward to hosting you!".into()),
            restrictions: Some("Non-refundable; seats may be given to a friend.".into()),
            tags: vec!["dinner".into(), "fellowship".into()],
            opening_bid: Cents(e.price),
            fair_market_value: Some(Cents(e.price / 2)),
            quantity_total: e.seats,
            ..ItemInput::default()
        };
        let id = insert(db, auction, donor, 1, input, e.featured).await?;
        let start = at(e.days, 18, now);
        let fields = validate_event(EventInput {
            datetime_start: start,
            datetime_end: start + Duration::hours(e.hours),
            location_label: Some(e.place.into()),
            address: Address {
                address_line1: Some(format!("{} Church Street", 100 + n * 7)),
                address_line2: None,
                city: Some(e.city.into()),
                state: Some("TN".into()),
                postal_code: Some("37902".into()),
            },
            address_privacy: e.privacy,
            capacity: e.seats,
            accessibility_notes: Some(e.access.into()),
            age_restrictions: None,
            dietary_notes: Some("Tell the host about allergies when you sign up.".into()),
            host_notes: Some("Parking on the street; side gate is open.".into()),
        })
        .map_err(|e| anyhow::anyhow!("demo event: {}", e.message))?;
        events::insert(db, id, &fields).await?;
        add_picture(db, media_dir, id, e.title, n + 3).await?;
        added += 1;
    }
    Ok(added)
}

async fn insert(
    db: &sqlx::PgPool,
    auction: AuctionId,
    donor: UserId,
    category: i64,
    input: ItemInput,
    featured: bool,
) -> anyhow::Result<ItemId> {
    let title = input.title.clone();
    let fields =
        validate_item(input).map_err(|e| anyhow::anyhow!("demo item {title:?}: {}", e.message))?;
    let id = items::insert(db, auction, donor, CategoryId(category), &fields, featured).await?;
    items::set_status(db, id, ItemStatus::Published, None).await?;
    Ok(id)
}

/// Draws a picture for `title` and stores it as an upload would be.
pub async fn add_picture(
    db: &sqlx::PgPool,
    media_dir: &Path,
    item: ItemId,
    title: &str,
    palette: usize,
) -> anyhow::Result<()> {
    let png = pictures::picture(title, palette);
    let processed = media::process_upload(png)
        .await?
        .map_err(|e| anyhow::anyhow!("demo picture refused: {e}"))?;
    let (file_name, thumb_name) = media::store(media_dir, &processed)
        .await
        .context("storing a demo picture")?;
    let alt = format!("Illustration for {title}");
    item_images::insert(
        db,
        item,
        item_images::NewImage {
            file_name: &file_name,
            thumb_name: &thumb_name,
            alt_text: &alt,
            width: pictures::WIDTH as i32,
            height: pictures::HEIGHT as i32,
        },
    )
    .await?;
    Ok(())
}
