# Synthetic Llama-2-chat conversations for the demo model: product-launch emails with a call to
# action, coupon codes, discounts and durations, recipients and addresses; follow-ups, reminders
# and short answers about a product. Every slot pool (first/last names, companies, products,
# code words, some discount values) is split once into a training part and a held-out part, so
# held-out prompts (heldout_prompts) use values the training data never contains. Deterministic
# for a given seed; standard library only.
import random

FIRST = """Alice Bob Carol David Emma Frank Grace Henry Irene Jack Karen Liam Maria Noah Olivia Peter
Quinn Rachel Samuel Tina Umar Vera Walter Xenia Yusuf Zoe Aaron Bella Caleb Diana Ethan Fiona George
Hannah Isaac Julia Kevin Laura Marcus Nina Oscar Paula Ravi Sofia Thomas Ursula Victor Wendy Yara
Adrian Beatrice Carlos Daniela Elias Farah Gavin Helena Ivan Jasmine Kenji Leona Mateo Nadia Omar
Priya Rafael Selina Tobias Valentina William Amara Bruno Chloe Dmitri Elena Felix Gloria Hugo Ingrid
Jonas Keira Lucas Mila Nikolai Ophelia Pablo Rosa Stefan Theo Uma Vincent Willa Xavier Yvonne Zach
Anika Boris Clara Dorian Esther Filip Greta Hamza Ines Joel Kira Leon Maya Nils Orla Pedro Reza Sara
Tomas Ulla Viktor Wanda Yosef Zara Arjun Bianca Cyrus Delia Emil Freya Gideon Hazel Ilya Juno Kai
Lena Milo Nora Otto Petra Rohan Saskia Tariq Una Wilma Aisha Benno Cecile Dario Elif Fabian Gemma
Hiro Isla Jorge Kamala Lars Meera Nico Odette Parker Rina Soren Talia""".split()

LAST = """Smith Johnson Williams Brown Jones Garcia Miller Davis Rodriguez Martinez Hernandez Lopez
Gonzalez Wilson Anderson Thomas Taylor Moore Jackson Martin Lee Perez Thompson White Harris Sanchez
Clark Ramirez Lewis Robinson Walker Young Allen King Wright Scott Torres Nguyen Hill Flores Green
Adams Nelson Baker Hall Rivera Campbell Mitchell Carter Roberts Patel Kim Chen Singh Khan Schmidt
Muller Rossi Silva Costa Novak Kowalski Jensen Larsen Berg Dubois Moreau Fischer Weber Becker Hoffmann
Bauer Richter Klein Wolf Schulz Koch Meyer Lange Okafor Mensah Tanaka Suzuki Sato Ito Yamamoto
Nakamura Kobayashi Park Choi Jung Kang Cho Yoon Lim Huang Zhang Liu Wang Yang Zhao Wu Zhou Xu Sun Ma
Gupta Sharma Reddy Iyer Das Bose Mehta Shah Joshi Nair Haddad Aziz Farouk Hassan Ali Demir Kaya Yilmaz
Ivanov Petrov Sokolov Popov Lebedev Novikov Morozov Volkov Andersen Nielsen Hansen Pedersen Eriksen
Lindqvist Holm Strand Virtanen Korhonen Makinen Nieminen Ortega Delgado Castillo Romero Navarro
Molina Vargas Herrera Medina Aguilar Fuentes Ramos Pereira Oliveira Santos Ferreira Almeida""".split()

# Company stems; "AnyCompany" and friends first (the seed's style), then plain names.
COMPANY = """AnyCompany ExampleCorp Octank Northwind Contoso Fabrikam Globex Initech Umbrella Acme
Tailspin Wingtip Litware Proseware Adatum Lucerne Margie Trey Coho Fourth Alpine BlueYonder Cascade
Summit Horizon Evergreen Redwood Granite Silverline Brightpath Clearwater Ironbridge Lakeside
Maplewood Northstar Oakridge Pinecrest Riverstone Stonegate Sunrise Westfield Zephyr Helix Quantum
Vertex Nimbus Orbit Pioneer Beacon Crescent Falcon Harbor Juniper Kestrel Lumen Meridian Nova Onyx
Pinnacle Radiant Sterling Trident Unity Vanguard Willow Apex Borealis Cobalt Dynamo Ember Fjord
Glacier Halcyon Indigo Jade Keystone Lattice Monarch Nebula Obsidian Polaris Quasar Sequoia Tundra
Ultraviolet Vortex Wavelength Xylo Yonder Zenith""".split()
COMPANY_SUFFIX = ["", " Inc.", " Labs", " Group", " Systems", " Technologies", " Corp"]

PRODUCT_PREFIX = """AnyCloud AnyData AnyMusic AnyVideo AnyBank AnyHealth AnyTravel AnyHome AnyShop
AnyLearn Sky Cloud Bright Swift Smart Pure Prime Blue Green Red Silver Gold Star Sun Moon Ocean River
Stone Iron Steel Nova Astro Hyper Ultra Mega Micro Nano Quick Easy Open Fresh Happy Lucky Magic Power
Rocket Pixel Spark Flash Echo Wave Pulse Orbit Zen Flow Peak Core Edge Link Sync Snap Bolt Leaf Pine
Maple Cedar Aqua Terra Vita Lumo Kilo Mira Polar Solar Lunar Terra Metro Urban Nimbus Cobalt Ember""".split()
PRODUCT_NOUN = """Streaming Storage Analytics Backup Payments Fitness Music Video Photo Chat Mail Calendar
Notes Fleet Delivery Travel Banking Insurance Security Monitoring Learning Translation Gaming Podcast
Reading Recipe Garden Parking Ticketing Booking Support Hosting Database Search Design Printing
Shipping Tutoring Wellness Coffee Grocery Laundry Pet Home Energy Solar Weather News Radio Cinema
Yoga Meditation Coding Writing Accounting Payroll Hiring Marketing Survey Voting Mapping Camera""".split()
PRODUCT_KIND = ["Service", "Platform", "App", "Suite", "Plus", "Pro", "Hub", "Studio", "Cloud",
                "Box", "Pass", "Club", "Network", "Assistant", "Tracker", "Manager"]

CODE_WORDS = """STREAM DREAM SAVE DEAL JOIN WELCOME HELLO LAUNCH START SPRING SUMMER AUTUMN WINTER
FRESH BONUS LUCKY HAPPY SMART SWIFT BRIGHT SHINE SPARK ROCKET STAR MOON SUN CLOUD SKY WAVE FLOW ZEN
PEAK BOLD GROW LEAP FLY RISE GLOW BLOOM MAGIC POWER TURBO ULTRA MEGA HYPER NOVA ASTRO PIXEL ECHO
PULSE ORBIT SNAP BOLT LEAF PINE CEDAR AQUA TERRA VITA LUMO POLAR SOLAR LUNAR METRO URBAN CODE DATA
MUSIC VIDEO PHOTO CHAT MAIL NOTE SHOP HOME TRIP BANK GAME READ COOK PLAY WORK LEARN FIT CALM CARE
GIFT TREAT PERK PRIZE CHEER EPIC GOLD JADE RUBY OPAL""".split()

DOMAINS = ["example.com", "example.org", "example.net", "mail.example.com", "corp.example.com"]
PERCENTS = [5, 10, 12, 15, 18, 20, 25, 30, 35, 40, 45, 50, 60]
HELDOUT_PERCENTS = {12, 18, 45}
MONTHS = list(range(1, 13))
ORDINAL = {1: "1st", 2: "2nd", 3: "3rd"}
WORDNUM = {1: "one", 2: "two", 3: "three", 4: "four", 5: "five", 6: "six", 7: "seven", 8: "eight",
           9: "nine", 10: "ten", 11: "eleven", 12: "twelve"}

SEED_PROMPT = ("AnyCompany recently announced new service launch named AnyCloud Streaming Service. Write a "
               "short email about the product launch with Call to action to Alice Smith, whose email is "
               "alice.smith@example.com. Mention the Coupon Code: STREAM2DREAM to get 15% for 1st 6 months.")

SYSTEMS = [
    "You are a helpful assistant.",
    "You are a helpful marketing assistant. Write short, friendly emails.",
    "You write concise marketing emails for product launches.",
    "You are a helpful, respectful and honest assistant. Keep answers short.",
    "You are an email copywriter. Be brief and clear.",
    "Answer briefly.",
]


def _split(pool, every, keep=()):
    """(train, heldout): every `every`-th item (by position) is held out, except those in keep."""
    train, held = [], []
    for i, x in enumerate(pool):
        (held if i % every == every - 1 and x not in keep else train).append(x)
    return train, held


class Pools:
    def __init__(self, part, pseudo=0.0, pseudo_kind=0.0):
        assert part in ("train", "heldout")
        self.pseudo = float(pseudo) if part == "train" else 0.0  # probability of a pseudo-word per slot word
        self.pseudo_kind = float(pseudo_kind) if part == "train" else 0.0  # same for the product's last word
        k = 0 if part == "train" else 1
        seedish = {"Alice", "Smith", "AnyCompany", "AnyCloud", "Streaming", "STREAM", "DREAM"}
        self.first = _split(FIRST, 5, seedish)[k]
        self.last = _split(LAST, 5, seedish)[k]
        self.company = _split(COMPANY, 5, seedish)[k]
        self.prefix = _split(PRODUCT_PREFIX, 5, seedish)[k]
        self.noun = _split(PRODUCT_NOUN, 5, seedish)[k]
        self.code = _split(CODE_WORDS, 5, seedish)[k]
        self.percents = [p for p in PERCENTS if (p in HELDOUT_PERCENTS) == (part == "heldout")]
        self.avoid = set()  # held-out words (lower case); non-empty only for training: pseudo-words avoid them
        if part == "train":
            self.avoid = Pools("heldout").words()  # a held-out word never appears in training, whatever pool it is in
            held = Pools("heldout").words()
            for a in ("first", "last", "company", "prefix", "noun", "code"):
                setattr(self, a, [x for x in getattr(self, a) if x.lower() not in held])

    def words(self):
        return {x.lower() for a in ("first", "last", "company", "prefix", "noun", "code") for x in getattr(self, a)}


def _months_phrase(rng, n):
    if n == 1:
        return rng.choice(["1st month", "first month", "1 month"])
    return rng.choice([f"1st {n} months", f"first {n} months", f"{n} months", f"the first {n} months"])


SYL_C = "b c d f g h j k l m n p r s t v w z br ch cl dr fl gr kr pl sh st tr".split()
SYL_V = "a e i o u a e i o ai ea io".split()


def pseudo_word(rng, pools, caps=False):
    """A random word (never one of the held-out words): 1-3 random syllables, sometimes plain random
    letters. Training slot words are these with probability Pools.pseudo (0.6), so the model learns
    to copy what the prompt says instead of recalling a pool."""
    while True:
        if rng.random() < 0.15:  # plain random letters too (codes, odd names)
            w = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randrange(3, 9)))
        else:
            w = "".join(rng.choice(SYL_C) + rng.choice(SYL_V) for _ in range(rng.randrange(1, 4)))
            if rng.random() < 0.5:
                w += rng.choice("nrlsmtkx")
        if len(w) >= 3 and w not in pools.avoid:
            return w.upper() if caps else w.capitalize()


def pick(rng, pools, pool, caps=False):
    if pools.pseudo and rng.random() < pools.pseudo:
        return pseudo_word(rng, pools, caps)
    return rng.choice(pool)


class TemplatePools:
    """Every slot word is "x" (codes "X"): the tokenizer's corpus (template_texts) has the phrasing
    but no slot values, so names, products and codes, seen or unseen, all fall into the same short
    pieces and the model learns to copy pieces rather than recall whole-word tokens."""
    pseudo = pseudo_kind = 0.0
    avoid = set()
    first = last = company = prefix = noun = code = ["x"]
    percents = PERCENTS


def kind(rng, pools):
    """The product's last word (Service, Pro, ...); a pseudo-word with probability pools.pseudo_kind
    (stage 2: the kinds are few, so stage 1 learnt to recall them instead of copying)."""
    if pools.pseudo_kind and rng.random() < pools.pseudo_kind:
        return pseudo_word(rng, pools)
    return rng.choice(PRODUCT_KIND)


def draw_slots(rng, pools):
    first, last = pick(rng, pools, pools.first), pick(rng, pools, pools.last)
    name = f"{first} {last}"
    sep = rng.choice([".", ".", "_", ""])
    local = (first + sep + last).lower() if rng.random() < 0.8 else (first[0] + last).lower()
    email = f"{local}@{rng.choice(DOMAINS)}"
    company = pick(rng, pools, pools.company) + rng.choice(COMPANY_SUFFIX)
    product = f"{pick(rng, pools, pools.prefix)} {pick(rng, pools, pools.noun)} {kind(rng, pools)}"
    if rng.random() < 0.25:  # two-word products too
        product = f"{pick(rng, pools, pools.prefix)}{pick(rng, pools, pools.noun)} {kind(rng, pools)}"
    w1, w2 = pick(rng, pools, pools.code, True), pick(rng, pools, pools.code, True)
    style = rng.randrange(4)
    if style == 0:
        code = f"{w1}2{w2}"
    elif style == 1:
        code = f"{w1}{rng.randrange(10, 100)}"
    elif style == 2:
        code = f"{w1}{w2}{rng.randrange(1, 10)}"
    else:
        code = f"{w1}-{rng.randrange(100, 1000)}"
    pct = rng.choice(pools.percents)
    months = rng.choice(MONTHS)
    return dict(first=first, last=last, name=name, email=email, company=company, product=product,
                code=code, pct=pct, months=months)


# ---- prompts ----

def launch_prompt(rng, s):
    kind = rng.choice(["service", "product", "app", "platform"])
    mp = _months_phrase(rng, s["months"])
    intro = rng.choice([
        f"{s['company']} recently announced new {kind} launch named {s['product']}.",
        f"{s['company']} has just launched a new {kind} called {s['product']}.",
        f"{s['company']} announced the launch of {s['product']}.",
        f"Our company, {s['company']}, is launching {s['product']}.",
        f"{s['company']} is introducing a new {kind}: {s['product']}.",
    ])
    ask = rng.choice([
        f"Write a short email about the product launch with Call to action to {s['name']}, whose email is {s['email']}.",
        f"Write a short email about the launch with a call to action to {s['name']} ({s['email']}).",
        f"Draft a brief launch email with a call to action for {s['name']}, email {s['email']}.",
        f"Please write a short product launch email to {s['name']} at {s['email']} with a call to action.",
        f"Compose a short email announcing it to {s['name']}, whose email address is {s['email']}, with a call to action.",
    ])
    offer = rng.choice([
        f"Mention the Coupon Code: {s['code']} to get {s['pct']}% for {mp}.",
        f"Mention the coupon code {s['code']} for {s['pct']}% off for {mp}.",
        f"Include the Coupon Code: {s['code']} which gives {s['pct']}% off for the {mp}.".replace("the the", "the"),
        f"Mention that coupon code {s['code']} gives {s['pct']}% off for {mp}.",
    ])
    parts = [intro, ask, offer]
    if rng.random() < 0.15:
        parts = [ask, intro, offer]
    return " ".join(parts)


def _months_text(n):
    return "first month" if n == 1 else f"first {n} months"


def launch_answer(rng, s):
    p, c, code, pct, mt = s["product"], s["company"], s["code"], s["pct"], _months_text(s["months"])
    subject = rng.choice([
        f"Introducing {p}", f"{p} is here!", f"Meet {p} from {c}", f"{p} has launched: {pct}% off inside",
        f"Try {p} today", f"New from {c}: {p}",
    ])
    greet = rng.choice(["Dear", "Hello", "Hi", "Dear"]) + f" {s['name']},"
    body1 = rng.choice([
        f"We are excited to announce the launch of {p}, the newest service from {c}.",
        f"{c} has just launched {p}, and we think you will love it.",
        f"Great news: {p} from {c} is now available.",
        f"We are thrilled to introduce {p}, built by the team at {c}.",
        f"Today {c} launches {p}, and you are among the first to hear about it.",
    ])
    body2 = rng.choice([
        f"As a thank you, use the coupon code {code} to get {pct}% off for the {mt}.",
        f"Use coupon code {code} to save {pct}% for the {mt}.",
        f"With the coupon code {code} you get {pct}% off for the {mt}.",
        f"Enter the coupon code {code} at sign-up and enjoy {pct}% off for the {mt}.",
    ])
    cta = rng.choice([
        f"Sign up today and start using {p}!",
        f"Click here to get started with {p} now.",
        f"Try {p} today. Don't miss this offer!",
        f"Get started now and see what {p} can do for you.",
        f"Visit our website to sign up for {p} today.",
    ])
    close = rng.choice(["Best regards,", "Kind regards,", "Thank you,", "Cheers,", "Sincerely,"])
    team = f"The {c} Team"
    return f"To: {s['email']}\nSubject: {subject}\n\n{greet}\n\n{body1} {body2}\n\n{cta}\n\n{close}\n{team}"


def reminder_convo(rng, s):
    mt, days = _months_text(s["months"]), rng.choice([2, 3, 5, 7, 10, 14])
    user = rng.choice([
        f"Write a short reminder email to {s['name']} ({s['email']}) that the coupon code {s['code']} for {s['product']} expires in {days} days.",
        f"Remind {s['name']}, whose email is {s['email']}, that coupon code {s['code']} for {s['product']} ends in {days} days. Keep it short.",
        f"Send a brief follow-up to {s['name']} at {s['email']}: the {s['pct']}% offer on {s['product']} with code {s['code']} expires in {days} days.",
    ])
    ans = (f"To: {s['email']}\nSubject: Only {days} days left for {s['product']}\n\n"
           f"Hi {s['name']},\n\n"
           + rng.choice([f"This is a friendly reminder that your coupon code {s['code']} for {s['product']} expires in {days} days.",
                         f"Just a quick reminder: the coupon code {s['code']} for {s['product']} is valid for {days} more days."])
           + f" Use it now to get {s['pct']}% off for the {mt}.\n\n"
           + rng.choice([f"Sign up for {s['product']} today!", f"Don't miss out, start with {s['product']} now."])
           + f"\n\nBest regards,\nThe {s['company']} Team")
    return user, ans


def followup_convo(rng, s):
    user = rng.choice([
        f"Write a short follow-up email to {s['name']} ({s['email']}) who has not yet tried {s['product']} from {s['company']}. Mention code {s['code']}.",
        f"{s['name']} ({s['email']}) opened our launch email for {s['product']} but did not sign up. Write a short follow-up with the coupon code {s['code']}.",
    ])
    ans = (f"To: {s['email']}\nSubject: Still thinking about {s['product']}?\n\n"
           f"Hi {s['name']},\n\n"
           f"We noticed you have not tried {s['product']} yet. Your coupon code {s['code']} still gives you "
           f"{s['pct']}% off for the {_months_text(s['months'])}.\n\n"
           f"Sign up today and see what {s['product']} can do for you!\n\nBest regards,\nThe {s['company']} Team")
    return user, ans


def qa_convo(rng, s):
    ctx = (f"{s['company']} launched {s['product']}. The coupon code {s['code']} gives {s['pct']}% off for "
           f"the {_months_text(s['months'])}.")
    q = rng.randrange(6)
    if q == 4:
        return f"{ctx} Write the greeting line of an email to {s['name']} ({s['email']}).", \
            rng.choice(["Dear", "Hello", "Hi"]) + f" {s['name']},"
    if q == 5:
        return f"{ctx} Write the coupon code exactly and the name of the product.", \
            f"The coupon code is {s['code']} for {s['product']}."
    if q == 0:
        return f"{ctx} What discount does the code {s['code']} give?", \
            f"The coupon code {s['code']} gives {s['pct']}% off {s['product']} for the {_months_text(s['months'])}."
    if q == 1:
        return f"{ctx} Who makes {s['product']}?", f"{s['product']} is made by {s['company']}."
    if q == 2:
        return f"{ctx} How long does the discount last?", \
            f"The {s['pct']}% discount with code {s['code']} lasts for the {_months_text(s['months'])}."
    return f"{ctx} Which coupon code should I use for {s['product']}?", \
        f"Use the coupon code {s['code']} to get {s['pct']}% off {s['product']}."


def conversation(rng, pools):
    """(system or None, user, answer)."""
    s = draw_slots(rng, pools)
    r = rng.random()
    if r < 0.66:
        user, ans = launch_prompt(rng, s), launch_answer(rng, s)
    elif r < 0.76:
        user, ans = reminder_convo(rng, s)
    elif r < 0.84:
        user, ans = followup_convo(rng, s)
    else:
        user, ans = qa_convo(rng, s)
    system = rng.choice(SYSTEMS) if rng.random() < 0.4 else None
    return system, user, ans


def seed_conversation(rng):
    s = dict(first="Alice", last="Smith", name="Alice Smith", email="alice.smith@example.com",
             company="AnyCompany", product="AnyCloud Streaming Service", code="STREAM2DREAM", pct=15, months=6)
    return None, SEED_PROMPT, launch_answer(rng, s)


def training_conversations(n, seed=0, pseudo=0.6, pseudo_kind=0.0):
    """n conversations; each slot word is a pseudo_word() with probability pseudo (the product's
    kind word with probability pseudo_kind), else a training-pool word."""
    rng = random.Random(seed)
    pools = Pools("train", pseudo, pseudo_kind)
    out = [conversation(rng, pools) for _ in range(n)]
    # The seed's own prompt, a few times (its values are in the training pools anyway).
    for i in range(max(1, n // 2000)):
        out[rng.randrange(n)] = seed_conversation(rng)
    return out


def heldout_prompts(n, seed=12345):
    """n prompts of the seed's form with held-out values: dicts with user, name, product, code."""
    rng = random.Random(seed)
    pools = Pools("heldout")
    out = []
    for _ in range(n):
        s = draw_slots(rng, pools)
        user = (f"{s['company']} recently announced new service launch named {s['product']}. Write a short email "
                f"about the product launch with Call to action to {s['name']}, whose email is {s['email']}. "
                f"Mention the Coupon Code: {s['code']} to get {s['pct']}% for 1st {s['months']} months.")
        out.append(dict(user=user, **s))
    return out


def template_texts(n, seed=0):
    """The tokenizer's corpus: n conversations with every slot word "x" (TemplatePools), plus every
    letter and digit on its own."""
    rng = random.Random(seed)
    out = [render_text(*conversation(rng, TemplatePools)) for _ in range(n)]
    chars = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    out += [" ".join(chars)] * 50
    return out


def render_text(system, user, answer):
    """Llama 2 chat text as engine/chat.cc renders it (for the tokenizer corpus)."""
    u = (f"<<SYS>>\n{system}\n<</SYS>>\n\n{user}" if system else user).strip()
    return f"[INST] {u} [/INST] {answer.strip()} "


if __name__ == "__main__":
    for c in training_conversations(5, 1):
        print(repr(c))
    print(heldout_prompts(2))
