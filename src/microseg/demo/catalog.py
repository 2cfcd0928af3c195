"""Vocabularies and the product catalogue of the demo data.

Everything readable in the demo files (category, product, brand, city and person names) comes
from the fixed lists in this module, so the generator itself only deals with numbers and indices.
The catalogue is built once per seed by :func:`build_catalog`; it does not depend on the number of
customers, so the same seed always yields the same products.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# --- product categories -------------------------------------------------------------------------


@dataclass(frozen=True)
class Category:
    """A product category: subcategories with (product noun, typical price in pounds), brands."""

    name: str
    subcategories: tuple[tuple[str, tuple[tuple[str, float], ...]], ...]
    brands: tuple[str, ...]
    adjectives: tuple[str, ...]


CATEGORIES: tuple[Category, ...] = (
    Category(
        "electronics",
        (
            ("audio", (("Headphones", 120), ("Earbuds", 60), ("Bluetooth Speaker", 70), ("Soundbar", 250))),
            ("computing", (("Laptop", 800), ("Keyboard", 45), ("Mouse", 25), ("Monitor", 220))),
            ("phones", (("Smartphone", 550), ("Phone Case", 15), ("Charger", 20), ("Power Bank", 30))),
            ("smart home", (("Smart Plug", 18), ("Smart Bulb", 14), ("Doorbell Camera", 110), ("Thermostat", 180))),
        ),
        ("Voltix", "Nordwave", "Kestrel", "Lumio"),
        ("Wireless", "Pro", "Compact", "Ultra", "Portable", "Mini"),
    ),
    Category(
        "fashion",
        (
            ("tops", (("T-Shirt", 15), ("Blouse", 30), ("Jumper", 40), ("Hoodie", 35))),
            ("bottoms", (("Jeans", 45), ("Chinos", 35), ("Skirt", 30), ("Shorts", 22))),
            ("outerwear", (("Jacket", 80), ("Raincoat", 65), ("Parka", 120), ("Blazer", 90))),
            ("footwear", (("Trainers", 70), ("Boots", 95), ("Sandals", 30), ("Loafers", 60))),
        ),
        ("Marlowe", "Fenn & Co", "Ashby", "Juniper Lane"),
        ("Slim", "Classic", "Oversized", "Linen", "Striped", "Relaxed"),
    ),
    Category(
        "beauty",
        (
            ("skincare", (("Moisturiser", 18), ("Serum", 28), ("Cleanser", 12), ("Face Mask", 8))),
            ("makeup", (("Lipstick", 14), ("Mascara", 12), ("Foundation", 24), ("Eyeshadow Palette", 30))),
            ("haircare", (("Shampoo", 7), ("Conditioner", 7), ("Hair Oil", 15), ("Styling Cream", 11))),
            ("fragrance", (("Eau de Parfum", 60), ("Body Mist", 14), ("Eau de Toilette", 40), ("Gift Set", 35))),
        ),
        ("Velour", "Botanica", "Lumen Skin", "Rosehip"),
        ("Hydrating", "Radiant", "Gentle", "Vitamin C", "Matte", "Nourishing"),
    ),
    Category(
        "home",
        (
            ("kitchen", (("Saucepan Set", 90), ("Chef's Knife", 45), ("Kettle", 40), ("Toaster", 45))),
            ("furniture", (("Armchair", 350), ("Side Table", 120), ("Bookcase", 180), ("Desk", 250))),
            ("decor", (("Cushion", 20), ("Throw", 35), ("Vase", 25), ("Mirror", 70))),
            ("bedding", (("Duvet", 60), ("Pillow Pair", 30), ("Bed Sheets", 40), ("Mattress Topper", 90))),
        ),
        ("Hearth", "Oakly", "Nestwell", "Linden Home"),
        ("Ceramic", "Oak", "Velvet", "Minimalist", "Scandi", "Cosy"),
    ),
    Category(
        "garden",
        (
            ("tools", (("Spade", 30), ("Pruning Shears", 22), ("Hose Reel", 45), ("Rake", 20))),
            ("plants", (("Rose Bush", 18), ("Herb Kit", 12), ("Olive Tree", 70), ("Bulb Collection", 15))),
            ("outdoor furniture", (("Bench", 180), ("Parasol", 90), ("Bistro Set", 160), ("Sun Lounger", 120))),
            ("lawn care", (("Lawn Feed", 16), ("Compost", 9), ("Grass Seed", 14), ("Plant Food", 7))),
        ),
        ("Greenacre", "Thornbury", "Bloomfield", "Rootstock"),
        ("Heavy-Duty", "Ergonomic", "Weatherproof", "Organic", "Dwarf", "Teak"),
    ),
    Category(
        "grocery",
        (
            ("pantry", (("Pasta", 1.5), ("Basmati Rice", 3), ("Olive Oil", 6), ("Chopped Tomatoes", 1))),
            ("snacks", (("Crisps", 2), ("Biscuits", 1.8), ("Chocolate Bar", 1.2), ("Trail Mix", 3.5))),
            ("drinks", (("Coffee Beans", 7), ("Tea Bags", 3.5), ("Orange Juice", 2.2), ("Sparkling Water", 1.5))),
            ("fresh", (("Sourdough Loaf", 3), ("Cheddar", 4), ("Free-Range Eggs", 3), ("Greek Yoghurt", 2.5))),
        ),
        ("Harvest Lane", "Daily Pantry", "Good Grocer", "Millbrook"),
        ("Organic", "Wholegrain", "Family Size", "Value", "Finest", "Low-Sugar"),
    ),
    Category(
        "household",
        (
            ("cleaning", (("Washing Up Liquid", 2), ("Surface Spray", 3), ("Bleach", 1.5), ("Microfibre Cloths", 4))),
            ("laundry", (("Laundry Detergent", 9), ("Fabric Conditioner", 4), ("Stain Remover", 5), ("Laundry Pods", 10))),
            ("paper", (("Toilet Roll", 7), ("Kitchen Roll", 4), ("Tissues", 2), ("Bin Bags", 3.5))),
            ("toiletries", (("Toothpaste", 2.5), ("Hand Wash", 2), ("Shower Gel", 3), ("Deodorant", 3.5))),
        ),
        ("Brightly", "Purefold", "HomeCare", "Sparkle"),
        ("Eco", "Lemon", "Bulk Pack", "Sensitive", "Fresh Linen", "Value"),
    ),
    Category(
        "toys",
        (
            ("games", (("Board Game", 25), ("Jigsaw Puzzle", 15), ("Card Game", 10), ("Party Game", 20))),
            ("construction", (("Building Bricks Set", 45), ("Marble Run", 35), ("Train Set", 60), ("Robot Kit", 55))),
            ("dolls and figures", (("Doll", 20), ("Action Figure", 15), ("Plush Bear", 18), ("Dollhouse", 85))),
            ("outdoor play", (("Scooter", 50), ("Kite", 15), ("Play Tent", 40), ("Water Blaster", 12))),
        ),
        ("Tumblebee", "Brickly", "Wonderloop", "Pip & Pals"),
        ("Deluxe", "Mini", "Classic", "Creative", "Junior", "Glow-in-the-Dark"),
    ),
    Category(
        "books",
        (
            ("fiction", (("Crime Novel", 9), ("Fantasy Saga", 12), ("Romance Novel", 8), ("Thriller", 9))),
            ("non-fiction", (("Cookbook", 22), ("Biography", 18), ("History", 20), ("Travel Guide", 15))),
            ("children's", (("Picture Book", 7), ("Activity Book", 6), ("Bedtime Stories", 10), ("Teen Novel", 8))),
            ("learning", (("Language Course", 25), ("Study Guide", 14), ("Atlas", 30), ("Dictionary", 20))),
        ),
        ("Quill Press", "Lantern Books", "Harbour House", "Inkwell"),
        ("Illustrated", "Paperback", "Hardback", "Collector's", "Bestselling", "Pocket"),
    ),
    Category(
        "sports",
        (
            ("fitness", (("Yoga Mat", 25), ("Dumbbell Set", 60), ("Resistance Bands", 15), ("Kettlebell", 35))),
            ("running", (("Running Shoes", 95), ("Running Jacket", 65), ("Sports Watch", 180), ("Water Bottle", 12))),
            ("cycling", (("Bike Helmet", 50), ("Bike Lights", 25), ("Cycling Gloves", 20), ("Road Bike", 750))),
            ("team sports", (("Football", 20), ("Tennis Racket", 70), ("Cricket Bat", 80), ("Rugby Ball", 22))),
        ),
        ("Stride", "Apex Sport", "Kinetic", "Summit"),
        ("Lightweight", "Pro", "Training", "Breathable", "Adjustable", "Performance"),
    ),
)  # fmt: skip

CATEGORY_NAMES: tuple[str, ...] = tuple(c.name for c in CATEGORIES)

#: Where the companion of an anchor product may come from: its own category or a related one.
RELATED_CATEGORIES: dict[str, tuple[str, ...]] = {
    "electronics": ("electronics", "home"),
    "fashion": ("fashion", "beauty"),
    "beauty": ("beauty", "fashion"),
    "home": ("home", "garden"),
    "garden": ("garden", "home"),
    "grocery": ("grocery", "household"),
    "household": ("household", "grocery"),
    "toys": ("toys", "books"),
    "books": ("books", "toys"),
    "sports": ("sports", "fashion"),
}

PRODUCTS_PER_CATEGORY = 32
#: Share of products that are "anchors" with planted companion products.
ANCHOR_SHARE = 0.15
#: A companion costs at most this share of its anchor's price (when the catalogue allows).
ACCESSORY_PRICE_SHARE = 0.35

# --- places and people ---------------------------------------------------------------------------

#: (city, region, postcode area, relative population).
CITIES: tuple[tuple[str, str, str, float], ...] = (
    ("London", "London", "SW", 9.0),
    ("Birmingham", "West Midlands", "B", 2.9),
    ("Manchester", "North West", "M", 2.8),
    ("Leeds", "Yorkshire and the Humber", "LS", 1.9),
    ("Glasgow", "Scotland", "G", 1.7),
    ("Liverpool", "North West", "L", 1.4),
    ("Newcastle upon Tyne", "North East", "NE", 1.1),
    ("Sheffield", "Yorkshire and the Humber", "S", 1.3),
    ("Bristol", "South West", "BS", 1.2),
    ("Edinburgh", "Scotland", "EH", 1.0),
    ("Cardiff", "Wales", "CF", 0.9),
    ("Belfast", "Northern Ireland", "BT", 0.8),
    ("Nottingham", "East Midlands", "NG", 1.0),
    ("Leicester", "East Midlands", "LE", 0.8),
    ("Southampton", "South East", "SO", 0.9),
    ("Brighton", "South East", "BN", 0.8),
    ("Reading", "South East", "RG", 0.7),
    ("Oxford", "South East", "OX", 0.5),
    ("Cambridge", "East of England", "CB", 0.5),
    ("Norwich", "East of England", "NR", 0.5),
    ("Exeter", "South West", "EX", 0.4),
    ("Plymouth", "South West", "PL", 0.5),
    ("York", "Yorkshire and the Humber", "YO", 0.4),
    ("Aberdeen", "Scotland", "AB", 0.4),
    ("Swansea", "Wales", "SA", 0.5),
    ("Truro", "South West", "TR", 0.2),
    ("Canterbury", "South East", "CT", 0.3),
    ("Shrewsbury", "West Midlands", "SY", 0.2),
)

REGIONS: tuple[str, ...] = tuple(dict.fromkeys(city[1] for city in CITIES))

#: Letters allowed in the inward part of a UK postcode.
POSTCODE_LETTERS = "ABDEFGHJLNPQRSTUWXYZ"

FEMALE_FIRST_NAMES: tuple[str, ...] = (
    "Olivia", "Amelia", "Isla", "Ava", "Emily", "Sophia", "Grace", "Mia", "Poppy", "Ella",
    "Lily", "Evie", "Freya", "Charlotte", "Jessica", "Sarah", "Emma", "Hannah", "Chloe", "Lucy",
    "Rachel", "Laura", "Rebecca", "Priya", "Aisha", "Zara", "Fatima", "Megan", "Katie", "Helen",
    "Susan", "Margaret", "Karen", "Julie", "Claire", "Niamh", "Siobhan", "Eilidh", "Ffion", "Ruth",
)  # fmt: skip

MALE_FIRST_NAMES: tuple[str, ...] = (
    "Oliver", "George", "Harry", "Noah", "Jack", "Leo", "Arthur", "Muhammad", "Oscar", "Charlie",
    "Jacob", "Thomas", "James", "William", "Daniel", "Samuel", "Joshua", "Ryan", "David", "Michael",
    "Paul", "Mark", "Andrew", "Richard", "Stephen", "Peter", "Arjun", "Omar", "Callum", "Liam",
    "Ethan", "Lewis", "Robert", "Ian", "Graham", "Rhys", "Dylan", "Ciaran", "Euan", "Kwame",
)  # fmt: skip

LAST_NAMES: tuple[str, ...] = (
    "Smith", "Jones", "Williams", "Taylor", "Brown", "Davies", "Evans", "Wilson", "Thomas",
    "Johnson", "Roberts", "Robinson", "Thompson", "Wright", "Walker", "White", "Edwards", "Hughes",
    "Green", "Hall", "Lewis", "Harris", "Clarke", "Patel", "Jackson", "Wood", "Turner", "Martin",
    "Cooper", "Hill", "Ward", "Morris", "Moore", "Clark", "Lee", "King", "Baker", "Harrison",
    "Morgan", "Allen", "James", "Scott", "Phillips", "Watson", "Davis", "Parker", "Price",
    "Bennett", "Young", "Griffiths", "Mitchell", "Kelly", "Cook", "Carter", "Richardson", "Bailey",
    "Collins", "Bell", "Shaw", "Murphy", "Khan", "Ali", "Campbell", "Stewart", "MacDonald", "Begum",
)  # fmt: skip

ACQUISITION_CHANNELS: tuple[str, ...] = (
    "organic_search", "paid_search", "social", "email", "referral", "store", "affiliate",
)  # fmt: skip

SOCIAL_NETWORKS: tuple[str, ...] = ("instagram", "facebook", "tiktok", "x")

# --- the catalogue -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Catalog:
    """The products of one seed, as parallel arrays indexed by product number (0-based).

    ``product_id[i]`` is ``"P0001"`` for ``i = 0``. Products are numbered category by category, so
    ``category_start[c] : category_start[c + 1]`` are the products of category ``c``.
    ``by_price`` lists each category's products from cheapest to dearest (again category by
    category), which lets the generator find the products priced around a budget with a single
    ``searchsorted``. ``popularity`` weighs products for browsing (page views, carts). ``companions`` holds the planted co-purchase pairs: for each product up to two
    companion product numbers (-1 for none) and the probability that each is added to the order.
    """

    product_id: tuple[str, ...]
    name: tuple[str, ...]
    category: np.ndarray  # int, index into CATEGORIES
    subcategory: tuple[str, ...]
    brand: tuple[str, ...]
    price_cents: np.ndarray  # int64 list price in pence
    popularity: np.ndarray  # float, sums to 1 within each category
    category_start: np.ndarray  # int, len(CATEGORIES) + 1 boundaries
    by_price: np.ndarray  # int product numbers, sorted by (category, price)
    companions: np.ndarray  # int (n_products, 2), -1 where none
    companion_strength: np.ndarray  # float (n_products, 2)

    @property
    def size(self) -> int:
        return len(self.product_id)

    @property
    def price(self) -> np.ndarray:
        """List prices in pounds."""
        return self.price_cents / 100.0

    def pairs(self) -> list[tuple[str, str, float]]:
        """The planted co-purchase pairs as (anchor product, companion product, strength)."""
        rows = []
        for anchor, slot in zip(*np.nonzero(self.companions >= 0), strict=True):
            companion = self.companions[anchor, slot]
            strength = float(self.companion_strength[anchor, slot])
            rows.append((self.product_id[anchor], self.product_id[companion], strength))
        return rows


def _retail_price(rng: np.random.Generator, typical: float) -> int:
    """A shelf price in pence near ``typical`` pounds (brands differ), ending in .99, .49 or .00."""
    pounds = typical * float(np.exp(rng.normal(0.0, 0.3)))
    if pounds < 3:
        # Cheap everyday items are priced to the penny band: 0.85, 1.25, 2.49 ...
        return max(int(round(pounds * 20)) * 5 - 1, 29)
    ending = int(rng.choice([-1, -51, 0], p=[0.6, 0.25, 0.15]))
    return max(round(pounds), 1) * 100 + ending


def build_catalog(rng: np.random.Generator) -> Catalog:
    """Build the product catalogue and its planted co-purchase pairs from ``rng``.

    The catalogue is small (``PRODUCTS_PER_CATEGORY`` per category), so a plain loop is clearer
    than vectorised code here and costs nothing measurable.
    """
    product_ids: list[str] = []
    names: list[str] = []
    categories: list[int] = []
    subcategories: list[str] = []
    brands: list[str] = []
    prices: list[int] = []
    seen_names: set[str] = set()
    for c, category in enumerate(CATEGORIES):
        for _ in range(PRODUCTS_PER_CATEGORY):
            sub_name, nouns = category.subcategories[rng.integers(len(category.subcategories))]
            brand = category.brands[rng.integers(len(category.brands))]
            noun, typical_price = nouns[rng.integers(len(nouns))]
            adjective = category.adjectives[rng.integers(len(category.adjectives))]
            name = f"{brand} {adjective} {noun}"
            # Names must be readable *and* unique, so a repeat gets a model number.
            model = 2
            base = name
            while name in seen_names:
                name = f"{base} {model}"
                model += 1
            seen_names.add(name)
            product_ids.append(f"P{len(product_ids) + 1:04d}")
            names.append(name)
            categories.append(c)
            subcategories.append(sub_name)
            brands.append(brand)
            prices.append(_retail_price(rng, typical_price))

    category = np.asarray(categories, dtype=np.int64)
    price_cents = np.asarray(prices, dtype=np.int64)
    n_products = len(product_ids)
    category_start = np.searchsorted(category, np.arange(len(CATEGORIES) + 1))
    by_price = np.lexsort((price_cents, category))

    # Zipf-like popularity within each category: a few best sellers, a long tail.
    popularity = np.empty(n_products)
    for c in range(len(CATEGORIES)):
        lo, hi = category_start[c], category_start[c + 1]
        ranks = rng.permutation(hi - lo) + 1
        weights = 1.0 / ranks**0.8
        popularity[lo:hi] = weights / weights.sum()

    companions = np.full((n_products, 2), -1, dtype=np.int64)
    strength = np.zeros((n_products, 2))
    n_anchors = round(ANCHOR_SHARE * n_products)
    anchors = np.sort(rng.choice(n_products, size=n_anchors, replace=False))
    anchor_set = {int(a) for a in anchors}
    used: set[int] = set()
    for anchor in anchors:
        anchor_category = CATEGORIES[category[anchor]].name
        n_companions = 1 + int(rng.random() < 0.4)
        taken = {int(anchor)}
        for slot in range(n_companions):
            related = RELATED_CATEGORIES[anchor_category]
            target = CATEGORY_NAMES.index(related[0] if rng.random() < 0.65 else related[1])
            lo, hi = category_start[target], category_start[target + 1]
            # Anchors are never companions, so every order with an anchor had the chance to add
            # its companions; and a product accompanies one anchor at most, so no companion
            # becomes a best seller through the pairs alone (both would dilute their lift).
            free = [p for p in range(lo, hi) if p not in anchor_set and p not in used]
            candidates = free or [p for p in range(lo, hi) if p not in anchor_set | taken]
            # Companions are accessories, cheap next to the anchor (a mouse with a laptop), so
            # they add little to the order value drawn by the spend model.
            cheap = [p for p in candidates if price_cents[p] <= ACCESSORY_PRICE_SHARE * price_cents[anchor]]
            candidates = cheap or sorted(candidates, key=lambda p: price_cents[p])[:3]
            companion = int(rng.choice(candidates))
            taken.add(companion)
            used.add(companion)
            companions[anchor, slot] = companion
            strength[anchor, slot] = round(float(rng.uniform(0.45, 0.85)), 2)

    return Catalog(
        product_id=tuple(product_ids),
        name=tuple(names),
        category=category,
        subcategory=tuple(subcategories),
        brand=tuple(brands),
        price_cents=price_cents,
        popularity=popularity,
        category_start=category_start,
        by_price=by_price,
        companions=companions,
        companion_strength=strength,
    )
