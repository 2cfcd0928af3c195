"""The event tables of a block: purchases, web, email, social, CRM and app / IoT events."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from microseg.demo import catalog as cat
from microseg.demo.columns import _constant, _fixed_width, _money, _strings
from microseg.demo.groups import (
    _ANONYMOUS_VISITORS_PER_CUSTOMER,
    _CAMPAIGN_REACH,
    _CANCEL_DELAY_HOURS,
    _CANCEL_RATE,
    _GROUP_NAMES,
    _HEARTBEAT_DAYS,
    _ID_BLOCK_DIGITS,
    _ORDER_SEQ_DIGITS,
    _PRE_SIGNUP_DAYS,
    _REFUND_DELAY_DAYS,
    _SECONDS_PER_DAY,
    _VISITOR_NUMBERS_PER_BLOCK,
    CHANNELS,
    CURRENCY,
    GROUPS,
    _per_group,
)
from microseg.demo.population import _CAMPAIGN_TYPES, _poisson_times
from microseg.demo.tables import (
    _BlockContext,
    _event_order,
    _event_table,
    _pick_by_category,
    _pick_category,
    _scramble,
)

# --- purchases -----------------------------------------------------------------------------------


def _purchases_table(ctx: _BlockContext) -> pa.Table:
    """Line items of every order, then refunds and cancellations of some lines."""
    pop, rng, products = ctx.pop, ctx.rng("purchases"), ctx.products
    n_orders = len(pop.order_owner)
    group = pop.group[pop.order_owner]

    # Split each order's value over 1-5 lines at random.
    lines = 1 + rng.binomial(4, _per_group(lambda g: g.buying.extra_lines)[group])
    line_order = np.repeat(np.arange(n_orders), lines)
    share = rng.gamma(2.0, 1.0, len(line_order))
    share /= np.bincount(line_order, share, minlength=n_orders)[line_order]
    budget_cents = np.maximum(pop.order_value[line_order] * share * 100.0, 1.0)

    # A product of the chosen category priced like the budget: of the two products whose prices
    # bracket the budget, pick the dearer with the probability that makes the expected price equal
    # the budget, so lines neither over- nor undershoot on average. Products sorted by
    # (category, log price) find the bracket with one searchsorted.
    category = _pick_category(rng, pop.theta, pop.order_owner[line_order])
    by_price = products.by_price
    sorted_cents = products.price_cents[by_price]
    sorted_key = products.category[by_price] * 100.0 + np.log(sorted_cents)
    first_dearer = np.searchsorted(sorted_key, category * 100.0 + np.log(budget_cents), side="right")
    lo, hi = products.category_start[category], products.category_start[category + 1] - 1
    below, above = np.clip(first_dearer - 1, lo, hi), np.clip(first_dearer, lo, hi)
    low_price, high_price = sorted_cents[below], sorted_cents[above]
    # Outside the category's price range both ends are the same product.
    p_above = (budget_cents - low_price) / np.maximum(high_price - low_price, 1)
    product = by_price[np.where(rng.random(len(below)) < p_above, above, below)]
    # Budgets above the dearest product buy several units.
    quantity = np.clip(np.rint(budget_cents / products.price_cents[product]), 1, 12).astype(np.int64)

    # Planted companions: each companion of an anchor joins the order with the pair's strength.
    extra_order, extra_product = [], []
    for slot in range(products.companions.shape[1]):
        companion = products.companions[product, slot]
        strength = products.companion_strength[product, slot]
        added = (companion >= 0) & (rng.random(len(product)) < strength)
        extra_order.append(line_order[added])
        extra_product.append(companion[added])
    line_order = np.concatenate([line_order, *extra_order])
    product = np.concatenate([product, *extra_product])
    quantity = np.concatenate((quantity, np.ones(len(product) - len(quantity), dtype=np.int64)))
    # An order lists each product once: lines that landed on the same product (a companion the
    # customer had picked anyway, two budgets near the same price) merge, adding their quantities.
    # np.unique also sorts the lines by order, then product.
    _, first, merged = np.unique(line_order * products.size + product, return_index=True, return_inverse=True)
    quantity = np.bincount(merged, weights=quantity).astype(np.int64)
    line_order, product = line_order[first], product[first]
    n_lines = len(product)
    line_group = pop.group[pop.order_owner[line_order]]

    # Some lines are bought at a 10-30% discount (bargain hunters most often).
    list_cents = products.price_cents[product]
    discounted = rng.random(n_lines) < _per_group(lambda g: g.buying.discount_share)[line_group]
    discount = rng.choice([0.1, 0.2, 0.3], size=n_lines)
    unit_cents = np.where(discounted, np.rint(list_cents * (1.0 - discount)), list_cents)
    unit_cents = unit_cents.astype(np.int64)

    # Refunds (days later, part of the quantity) and cancellations (within a day, all of it).
    line_ts = pop.order_ts[line_order]
    u = rng.random(n_lines)
    refund_rate = _per_group(lambda g: g.buying.refund_rate)[line_group]
    refund = u < refund_rate
    cancel = (u >= refund_rate) & (u < refund_rate + _CANCEL_RATE)
    delay_days = np.where(
        refund,
        rng.uniform(*_REFUND_DELAY_DAYS, n_lines),
        rng.uniform(*_CANCEL_DELAY_HOURS, n_lines) / 24.0,
    )
    back_ts = line_ts + np.rint(delay_days * _SECONDS_PER_DAY).astype(np.int64)
    back = (refund | cancel) & (back_ts < ctx.window.end_s)  # nothing after the window
    back_qty = np.where(refund, rng.integers(1, quantity + 1), quantity)

    # Rows: every line as a purchase, then the refunds and cancellations of the returned lines.
    src = np.concatenate((np.arange(n_lines), np.flatnonzero(back)))
    event_type = np.concatenate((np.zeros(n_lines, dtype=np.int64), np.where(refund[back], 1, 2)))
    ts = np.concatenate((line_ts, back_ts[back]))
    qty = np.concatenate((quantity, -back_qty[back]))
    row_order = line_order[src]
    owner = pop.order_owner[row_order]
    sort = _event_order(ctx.window, owner, ts)
    src, event_type, ts, qty, row_order, owner = (
        a[sort] for a in (src, event_type, ts, qty, row_order, owner)
    )

    order_ids = _fixed_width(
        "O", ctx.block * 10**_ORDER_SEQ_DIGITS + np.arange(n_orders), _ID_BLOCK_DIGITS + _ORDER_SEQ_DIGITS
    )
    columns = {
        "event_type": _strings(("purchase", "refund", "cancellation"), event_type),
        "customer_id": ctx.customer_ids.take(pa.array(owner)),
        "channel": _strings(CHANNELS, pop.order_channel[row_order]),
        "order_id": order_ids.take(pa.array(row_order)),
        "product_id": _strings(products.product_id, product[src]),
        "quantity": pa.array(qty, pa.int64()),
        "unit_price": _money(unit_cents[src]),
        "currency": _constant(CURRENCY, len(src)),
    }
    # The planted shock: cohort members buy nothing (nor return anything) from its start on.
    keep = None if ctx.cohort is None else ctx.cohort.keeps(owner, ts)
    return _event_table(ctx, "purchases", ts, columns, keep)


# --- web -----------------------------------------------------------------------------------------

_STATIC_PAGES = ("/", "/search", "/offers", "/pricing", "/delivery", "/account", "/cart", "/checkout")
_CART_PAGE, _CHECKOUT_PAGE, _OFFERS_PAGE = 6, 7, 2


def _web_table(ctx: _BlockContext) -> pa.Table:
    """Page views: browsing sessions, checkout sessions of web orders, anonymous visitors."""
    pop, rng, products, window = ctx.pop, ctx.rng("web"), ctx.products, ctx.window
    n = pop.size
    engagement = [g.engagement for g in GROUPS]
    rate = np.array([e.web_sessions_per_year for e in engagement])[pop.group] / 365.25

    # Browsing sessions from a month before signup until the customer disengages.
    lo = np.maximum(pop.signup - _PRE_SIGNUP_DAYS, 0.0)
    owner, t = _poisson_times(rng, lo, pop.engaged_until, rate)
    keep = rng.random(len(owner)) < pop.activity(owner, t)
    owner, t = owner[keep], t[keep]
    # Sessions before signup are anonymous (cookie only), and 15% of later ones are not logged in.
    logged_in = (t >= pop.signup[owner]) & (rng.random(len(owner)) >= 0.15)
    mean_pages = np.array([e.pages_per_session for e in engagement])[pop.group[owner]]
    pages = np.minimum(1 + rng.poisson(mean_pages - 1.0), 12)

    # Checkout sessions (cart, then checkout) just before each web order.
    web_orders = np.flatnonzero(pop.order_channel == CHANNELS.index("web"))
    checkout_ts = pop.order_ts[web_orders] - rng.integers(300, 1200, len(web_orders))
    checkout_ts = np.maximum(checkout_ts, window.start_s)

    # Anonymous visitors who never identify: a few short visits each, anywhere in the window.
    n_visitors = rng.poisson(_ANONYMOUS_VISITORS_PER_CUSTOMER * n)
    visitor = np.repeat(np.arange(n_visitors), 1 + rng.poisson(0.5, n_visitors))

    # One row per session; the owner key puts the block's customers first, then the visitors.
    sizes = (len(owner), len(web_orders), len(visitor))
    s_owner = np.concatenate((owner, pop.order_owner[web_orders], n + visitor))
    s_ts = np.concatenate(
        (window.seconds(t), checkout_ts, window.seconds(rng.random(len(visitor)) * window.days))
    )
    s_pages = np.concatenate((pages, np.full(sizes[1], 2), 1 + rng.poisson(1.0, sizes[2])))
    s_known = np.concatenate((logged_in, np.ones(sizes[1], bool), np.zeros(sizes[2], bool)))
    s_checkout = np.repeat([False, True, False], sizes)

    # Expand sessions to page views, about a minute apart.
    session = np.repeat(np.arange(len(s_owner)), s_pages)
    first = np.concatenate(([0], np.cumsum(s_pages)))[:-1]
    step = np.arange(len(session)) - first[session]
    gaps = rng.exponential(60.0, len(session)).astype(np.int64) + 5
    gaps[step == 0] = 0
    offset = np.cumsum(gaps)
    offset -= offset[first][session]
    ts = s_ts[session] + offset

    page_owner = s_owner[session]
    customer = page_owner < n
    cust_idx = np.where(customer, page_owner, 0)
    # Page kinds: 0 static page, 1 category page, 2 product page; visits start on a landing page.
    u = rng.random(len(session))
    landing = step == 0
    url_kind = np.where(
        landing,
        np.where(u < 0.4, 0, np.where(u < 0.85, 1, 2)),
        np.where(u < 0.15, 0, np.where(u < 0.35, 1, 2)),
    )
    # Customers browse their favourite categories; visitors the whole catalogue evenly.
    category = np.where(
        customer,
        _pick_category(rng, pop.theta, cust_idx),
        rng.integers(0, len(cat.CATEGORIES), len(session)),
    )
    product = _pick_by_category(rng, products, category)
    # Static pages but the checkout: /, /search, /offers, /pricing, /delivery, /account, /cart.
    static = rng.choice(7, size=len(session), p=[0.2, 0.25, 0.15, 0.05, 0.05, 0.1, 0.2])
    static[landing] = 0
    bargain = customer & (pop.group[cust_idx] == _GROUP_NAMES.index("bargain_hunters"))
    static[bargain & (rng.random(len(session)) < 0.3)] = _OFFERS_PAGE
    n_static, n_categories = len(_STATIC_PAGES), len(cat.CATEGORIES)
    url = np.select(
        [url_kind == 0, url_kind == 1], [static, n_static + category], n_static + n_categories + product
    )
    checkout = s_checkout[session]
    url[checkout] = np.where(step[checkout] == 0, _CART_PAGE, _CHECKOUT_PAGE)

    keep = ts < window.end_s
    sort = np.flatnonzero(keep)[_event_order(window, page_owner[keep], ts[keep])]
    ts, page_owner, cust_idx, url = ts[sort], page_owner[sort], cust_idx[sort], url[sort]
    known = s_known[session[sort]]
    # The planted shock: cohort members browse less from its start on and no longer check out.
    keep = None
    if ctx.cohort is not None:
        order_ts = pop.order_ts[web_orders]
        decision_ts = np.concatenate((s_ts[: sizes[0]], order_ts, s_ts[sizes[0] + sizes[1] :]))
        kept = ctx.cohort.keeps_sessions(ctx.rng("shock_web"), s_owner, decision_ts, ~s_checkout)
        keep = kept[session[sort]]
    vocab = (
        _STATIC_PAGES
        + tuple(f"/category/{c}" for c in cat.CATEGORY_NAMES)
        + tuple(f"/product/{p}" for p in products.product_id)
    )
    # Visitors' cookies come from a number range no customer uses (customers are < 10^8).
    if n_visitors >= _VISITOR_NUMBERS_PER_BLOCK:  # pragma: no cover - BLOCK_SIZE far too large
        raise OverflowError("too many anonymous visitors in one block")
    visitor_numbers = 10**8 + ctx.block * _VISITOR_NUMBERS_PER_BLOCK + np.arange(n_visitors)
    cookies = pa.concat_arrays([ctx.cookie_ids, _fixed_width("A", _scramble(visitor_numbers, 0), 10)])
    columns = {
        "event_type": _constant("page_view", len(ts)),
        "customer_id": pc.if_else(
            pa.array(known), ctx.customer_ids.take(pa.array(cust_idx)), pa.scalar(None, pa.string())
        ),
        "anonymous_id": cookies.take(pa.array(page_owner)),
        "channel": _constant("web", len(ts)),
        "url": _strings(vocab, url),
    }
    return _event_table(ctx, "web", ts, columns, keep)


# --- email ---------------------------------------------------------------------------------------


def _email_table(ctx: _BlockContext) -> pa.Table:
    """Campaign sends to subscribers, with opens and clicks whose rates depend on the group."""
    pop, rng, window, campaigns = ctx.pop, ctx.rng("email"), ctx.window, ctx.campaigns
    subscribed = np.flatnonzero(pop.email_subscribed)
    # Subscribers stay until they unsubscribe (exponential, mean three years) or the window ends.
    until = pop.signup[subscribed] + rng.exponential(3 * 365.25, len(subscribed))
    first = np.searchsorted(campaigns.t, pop.signup[subscribed])
    eligible = np.maximum(np.searchsorted(campaigns.t, until) - first, 0)
    # Every (subscriber, campaign) pair of the subscription; the campaign's reach decides.
    pair_owner = np.repeat(subscribed, eligible)
    starts = np.concatenate(([0], np.cumsum(eligible)))[:-1]
    pair_campaign = np.repeat(first - starts, eligible) + np.arange(len(pair_owner))
    reach = np.array([_CAMPAIGN_REACH[k] for k in _CAMPAIGN_TYPES])[campaigns.kind[pair_campaign]]
    sent = rng.random(len(pair_owner)) < reach
    owner, campaign = pair_owner[sent], pair_campaign[sent]
    sent_t = campaigns.t[campaign]
    kind = campaigns.kind[campaign]

    engagement = [g.engagement for g in GROUPS]
    group = pop.group[owner]
    open_p = np.array([e.email_open for e in engagement])[group] * pop.activity(owner, sent_t)
    # Customers who dropped out mostly ignore the emails; sleeping dogs open them less.
    gone = ~pop.alive[owner] & (sent_t > pop.engaged_until[owner])
    open_p[gone] *= 0.25
    open_p[pop.sleeping_dog[owner]] *= 0.6
    opened = rng.random(len(owner)) < open_p
    click_by_kind = np.array([[e.click_newsletter, e.click_promo, e.click_christmas] for e in engagement])
    clicked = opened & (rng.random(len(owner)) < click_by_kind[group, kind])

    sent_ts = window.seconds(sent_t) + rng.integers(0, 600, len(owner))  # the batch takes minutes
    open_ts = sent_ts + np.rint(rng.lognormal(np.log(3 * 3600.0), 1.2, len(owner))).astype(np.int64)
    click_ts = open_ts + 5 + rng.exponential(40.0, len(owner)).astype(np.int64)
    # Clicks lead to the offers page (promotions), a gift category (Christmas) or the customer's
    # favourite category (newsletters).
    gift = np.where(rng.random(len(owner)) < 0.6, cat.CATEGORY_NAMES.index("toys"),
                    cat.CATEGORY_NAMES.index("books"))  # fmt: skip
    click_category = np.where(kind == 2, gift, pop.theta.argmax(axis=1)[owner])
    click_url = np.where(kind == 1, 0, 1 + click_category)
    vocab = ("/offers",) + tuple(f"/category/{c}" for c in cat.CATEGORY_NAMES)

    in_window = sent_ts < window.end_s
    opened &= open_ts < window.end_s
    clicked &= click_ts < window.end_s
    # Rows in causal order (sends, opens, clicks) so the stable sort keeps it within a second.
    rows = np.concatenate((np.flatnonzero(in_window), np.flatnonzero(opened), np.flatnonzero(clicked)))
    event_type = np.repeat([0, 1, 2], [in_window.sum(), opened.sum(), clicked.sum()])
    ts = np.concatenate((sent_ts[in_window], open_ts[opened], click_ts[clicked]))
    sort = _event_order(window, owner[rows], ts)
    rows, event_type, ts = rows[sort], event_type[sort], ts[sort]
    columns = {
        "event_type": _strings(("email_sent", "email_open", "email_click"), event_type),
        "customer_id": ctx.customer_ids.take(pa.array(owner[rows])),
        "channel": _constant("email", len(rows)),
        "campaign_id": campaigns.campaign_id.take(pa.array(campaign[rows])),
        "url": _strings(vocab, np.where(event_type == 2, click_url[rows], 0), mask=event_type != 2),
    }
    return _event_table(ctx, "email", ts, columns)


# --- social --------------------------------------------------------------------------------------


def _social_table(ctx: _BlockContext) -> pa.Table:
    """Follows of the brand's social accounts (name = network)."""
    pop, rng, window = ctx.pop, ctx.rng("social"), ctx.window
    engagement = [g.engagement for g in GROUPS]
    networks = np.array([e.networks for e in engagement])
    networks = networks / networks.sum(axis=1, keepdims=True)
    expected = np.array([e.social_follow for e in engagement])[:, None] * networks
    follow = rng.random((pop.size, len(cat.SOCIAL_NETWORKS))) < np.minimum(expected[pop.group], 0.95)
    owner, network = np.nonzero(follow)
    lo, hi = pop.signup[owner], np.maximum(pop.engaged_until[owner], pop.signup[owner])
    ts = window.seconds(lo + rng.random(len(owner)) * (hi - lo))
    sort = _event_order(window, owner, ts)
    owner, network, ts = owner[sort], network[sort], ts[sort]
    columns = {
        "event_type": _constant("social_follow", len(owner)),
        "customer_id": ctx.customer_ids.take(pa.array(owner)),
        "channel": _constant("social", len(owner)),
        "name": _strings(cat.SOCIAL_NETWORKS, network),
    }
    return _event_table(ctx, "social", ts, columns)


# --- CRM -----------------------------------------------------------------------------------------

_CRM_STATES = (("lead", "new"), ("lead", "qualified"), ("lead", "converted"),
               ("opportunity", "open"), ("opportunity", "won"), ("opportunity", "lost"))  # fmt: skip


def _crm_table(ctx: _BlockContext) -> pa.Table:
    """Lead (new -> qualified -> converted) and opportunity (open -> won / lost) updates."""
    pop, rng, window = ctx.pop, ctx.rng("crm"), ctx.window
    n, start, end = pop.size, window.start_s, window.end_s
    tracked, buyer, first_buy = pop.crm_tracked, pop.buyer, pop.first_purchase
    # A lead is created up to two weeks before signup (and at least an hour before buying),
    # qualified some time before the first purchase, converted by it.
    new_ts = window.seconds(pop.signup - rng.random(n) * np.minimum(14.0, pop.signup))
    new_ts = np.where(buyer, np.maximum(np.minimum(new_ts, first_buy - 3600), start), new_ts)
    horizon = np.where(buyer, first_buy, end)
    qualified = tracked & (rng.random(n) < np.where(buyer, 0.8, 0.4))
    qualified_ts = new_ts + ((horizon - new_ts) * rng.uniform(0.1, 0.9, n)).astype(np.int64)
    converted = tracked & buyer

    opportunity_p = np.array([g.engagement.crm_opportunity for g in GROUPS])[pop.group]
    opportunity = converted & (rng.random(n) < opportunity_p)
    # Opportunities open while the customer is engaged (churned customers: soon after leaving).
    open_until = np.maximum(window.seconds(pop.engaged_until), first_buy)
    open_ts = first_buy + ((open_until - first_buy) * rng.random(n)).astype(np.int64)
    close_ts = open_ts + np.rint(rng.uniform(7, 60, n) * _SECONDS_PER_DAY).astype(np.int64)
    closed = opportunity & (close_ts < end)
    won = rng.random(n) < 0.55

    parts = [
        (tracked, new_ts),
        (qualified, qualified_ts),
        (converted, first_buy),
        (opportunity, open_ts),
        (closed & won, close_ts),
        (closed & ~won, close_ts),
    ]  # in _CRM_STATES order, which is also the causal order
    owner = np.concatenate([np.flatnonzero(mask) for mask, _ in parts])
    ts = np.concatenate([values[mask] for mask, values in parts])
    state = np.repeat(np.arange(len(parts)), [mask.sum() for mask, _ in parts])
    sort = _event_order(window, owner, ts)
    owner, ts, state = owner[sort], ts[sort], state[sort]
    columns = {
        "event_type": _constant("crm_update", len(owner)),
        "customer_id": ctx.customer_ids.take(pa.array(owner)),
        "channel": _constant("crm", len(owner)),
        "name": _strings([o for o, _ in _CRM_STATES], state),
        "status": _strings([s for _, s in _CRM_STATES], state),
    }
    return _event_table(ctx, "crm", ts, columns)


# --- app and IoT ---------------------------------------------------------------------------------

_APP_EVENTS = ("app_open", "add_to_cart", "wishlist_add", "device_heartbeat")


def _app_table(ctx: _BlockContext) -> pa.Table:
    """App sessions (open, add to cart, wishlist) and IoT device heartbeats."""
    pop, rng, window, products = ctx.pop, ctx.rng("app"), ctx.window, ctx.products
    n = pop.size
    engagement = [g.engagement for g in GROUPS]
    installed = pop.signup + rng.exponential(45.0, n)
    rate = np.where(pop.app_user, np.array([e.app_opens_per_year for e in engagement])[pop.group], 0.0)
    owner, t = _poisson_times(rng, installed, pop.engaged_until, rate / 365.25)
    keep = rng.random(len(owner)) < pop.activity(owner, t)
    owner, t = owner[keep], t[keep]
    open_ts = window.seconds(t)
    group = pop.group[owner]
    cart = rng.random(len(owner)) < np.array([e.add_to_cart for e in engagement])[group]
    wish = rng.random(len(owner)) < np.array([e.wishlist_add for e in engagement])[group]
    cart_ts = open_ts + rng.integers(20, 600, len(owner))
    wish_ts = open_ts + rng.integers(20, 600, len(owner))

    # Smart-home devices report every two weeks from activation to the end, churned or not.
    iot = np.flatnonzero(pop.iot_owner)
    activated = pop.signup[iot] + rng.random(len(iot)) * (window.days - pop.signup[iot])
    beats = np.floor((window.days - activated) / _HEARTBEAT_DAYS).astype(np.int64) + 1
    beat_owner = np.repeat(iot, beats)
    beat_start = np.concatenate(([0], np.cumsum(beats)))[:-1]
    beat_k = np.arange(len(beat_owner)) - np.repeat(beat_start, beats)
    beat_ts = window.seconds(np.repeat(activated, beats) + beat_k * _HEARTBEAT_DAYS)

    # Rows in causal order (opens before what happens in the session).
    owner = np.concatenate((owner, owner[cart], owner[wish], beat_owner))
    ts = np.concatenate((open_ts, cart_ts[cart], wish_ts[wish], beat_ts))
    name = np.repeat([0, 1, 2, 3], [len(open_ts), cart.sum(), wish.sum(), len(beat_owner)])
    keep = ts < window.end_s
    sort = np.flatnonzero(keep)[_event_order(window, owner[keep], ts[keep])]
    owner, ts, name = owner[sort], ts[sort], name[sort]
    product = _pick_by_category(rng, products, _pick_category(rng, pop.theta, owner))
    heartbeat = name == 3
    take = pa.array(owner)
    columns = {
        "event_type": _constant("app_event", len(ts)),
        "customer_id": ctx.customer_ids.take(take),
        "anonymous_id": pc.if_else(
            pa.array(heartbeat), ctx.iot_device_ids.take(take), ctx.app_device_ids.take(take)
        ),
        "channel": _strings(("app", "iot"), heartbeat.astype(np.int64)),
        "name": _strings(_APP_EVENTS, name),
        "product_id": _strings(products.product_id, product, mask=(name == 0) | heartbeat),
    }
    return _event_table(ctx, "app", ts, columns)


_EVENT_BUILDERS: dict[str, Callable[[_BlockContext], pa.Table]] = {
    "purchases": _purchases_table,
    "web": _web_table,
    "email": _email_table,
    "social": _social_table,
    "crm": _crm_table,
    "app": _app_table,
}
