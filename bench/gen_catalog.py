#!/usr/bin/env python3
"""bench/gen_catalog.py N SEED > catalog.json — a synthetic catalog for `resortd import`.

Writes an import document (include/bulk.h) with a handful of resorts, N products and one
rate plan per room_type and ticket. Python 3 standard library only; the same N and SEED
always give the same bytes.

  - products: about 50% room_type, 15% facility, 20% ticket, 15% package (a package
    bundles 1-3 earlier non-package products of its own resort); about 2% inactive.
  - names: one third Korean (with an English name_en most of the time), the rest English,
    some with accented spellings (Déluxe, Café, Château ...).
  - descriptions: 20-80 words drawn from a vocabulary with a Zipf distribution (s = 1), so
    the first terms of EN_VOCAB / KO_VOCAB are in most products of their language and the
    tail is rare; Korean words sometimes carry a particle (객실에서, 바다가), as real text does.
  - attributes: view, beds, pets, size_m2, floor, amenities (an array), and per type
    outdoor / heated / duration_min / age_min / nights.
  - rate plans: a base rule and a fri/sat rule over RATE_DAYS days from RATE_FROM.

bench/search.sh picks its queries from the head and the tail of the two vocabularies below,
so keep their order when editing them (the first entries are the most frequent).
"""
import bisect
import datetime
import itertools
import json
import random
import sys

RATE_FROM = datetime.date(2027, 1, 1)
RATE_DAYS = 120
ZIPF_S = 1.0

RESORTS = [
    ("jeju", "제주 오션 리조트", "Jeju Ocean Resort", "제주특별자치도 서귀포시 중문관광로 72", 5),
    ("seorak", "설악 마운틴 리조트", "Seorak Mountain Resort", "강원특별자치도 속초시 설악산로 1091", 4),
    ("haeundae", "부산 해운대 스파 리조트", "Haeundae Spa Resort", "부산광역시 해운대구 해운대해변로 264", 4),
    ("gyeongju", "경주 보문 호텔 앤 리조트", "Gyeongju Bomun Hotel & Resort", "경상북도 경주시 보문로 424", 5),
    ("yeosu", "여수 하버 리조트", "Yeosu Harbor Resort", "전라남도 여수시 오동도로 111", 4),
    ("pyeongchang", "평창 알펜 리조트", "Pyeongchang Alpen Resort", "강원특별자치도 평창군 대관령면 올림픽로 715", 4),
]

# English description vocabulary, most frequent first (rank 1 = "room").
EN_VOCAB = """
room the and with view a of to for guests in resort bed our sea from is bathroom on breakfast
free spacious comfortable pool all private large ocean balcony wifi family terrace garden by
deluxe at modern air conditioning shower beach minutes are you walk access tv kitchen mountain
suite twin double king queen spa your this area relax hot spring sauna restaurant buffet lounge
quiet bright style natural light wooden floor heated indoor outdoor kids club fitness center
parking shuttle airport station city harbor lake forest trail sunset sunrise night market local
café déluxe crème brûlée rosé château résidence naïve façade coffee tea minibar safe desk sofa
wardrobe slippers bathrobe toiletries bathtub rain towels linen pillow menu daily housekeeping
service reception hours open seasonal dinner lunch set course korean western traditional ondol
hanok stay nights weekend weekday holiday season summer winter spring autumn snow ski slope lift
golf course tennis court yoga cycling hiking kayak yacht cruise tour ticket pass entry adults
children under years old pets allowed small dogs welcome smoking non stairs elevator wheelchair
accessible connecting rooms sleeps up four two three one extra cot baby crib available request
charge included per person rate best price guaranteed cancel check late early fast lane premium
exclusive executive floor club lounge access happy hour cocktails wine bar rooftop panoramic
window floor-to-ceiling glass wall marble granite oak walnut pine cedar scent aroma massage
therapy treatment couples package romantic honeymoon anniversary celebration cake flowers
champagne welcome drink amenities kit eco friendly solar refill bottles bamboo organic cotton
sheets down duvet memory foam mattress blackout curtains soundproof windows nespresso kettle
microwave fridge dishwasher washer dryer laundry iron board hair dryer magnifying mirror bidet
heated toilet seat walk-in closet dressing room living dining table chairs sun loungers hammock
barbecue grill fire pit outdoor bath jacuzzi whirlpool plunge infinity edge overflow salt water
chlorine free natural stone volcanic basalt lava tube jeju olle oreum hallasan seongsan ilchulbong
seoraksan ulsanbawi gwongeumseong haeundae gwangalli dongbaek bulguksa seokguram bomun odongdo
dolsan daegwallyeong alpensia woljeongsa jumunjin gangneung sokcho yangyang pohang tongyeong
geoje namhae suncheon damyang jeonju hanji pottery celadon ceramics calligraphy tea ceremony
temple stay meditation bell chanting lantern festival fireworks cherry blossom azalea camellia
maple foliage reed fields green tea plantation citrus tangerine hallabong orchard farm picking
workshop class cooking kimchi bibimbap bulgogi galbi hoe raw fish abalone porridge seafood
stew noodles dumplings street food pancake makgeolli soju craft beer brewery distillery tasting
gallery museum library bookshop concert jazz live music karaoke cinema arcade game billiards
bowling climbing wall trampoline water slide lazy river wave pool splash zone playground
nursery babysitting nanny concierge butler valet porter luggage storage locker shower facilities
""".split()
EN_VOCAB = list(dict.fromkeys(EN_VOCAB))  # first occurrence keeps its rank

# Korean description vocabulary, most frequent first (rank 1 = 객실).
KO_VOCAB = """
객실 바다 전망 제공 이용 가능 넓은 편안한 침대 조식 무료 호텔 리조트 고객 욕실 발코니 테라스
오션뷰 디럭스 스위트 스파 패키지 가든 마운틴뷰 트윈 온천 수영장 더블 킹 퀸 패밀리 스탠다드
슈페리어 프리미어 로열 온돌 한실 양실 와이파이 주차 셔틀 공항 해변 정원 산책로 야외 실내
노천탕 사우나 피트니스 키즈클럽 레스토랑 뷔페 라운지 카페 바 루프탑 인피니티풀 워터파크 골프
스키 리프트 케이블카 입장권 이용권 왕복 체크인 체크아웃 포함 예약 할인 특가 시즌 주말 평일
성수기 비수기 반려동물 동반 금연 욕조 샤워 미니바 냉장고 커피 차 와인 바베큐 캠핑 글램핑 요트
서핑 카약 낚시 등산 트레킹 자전거 일출 일몰 야경 별빛 숲 계곡 호수 섬 항구 시내 관광 명소
한라산 설악산 해운대 제주 부산 강원 경주 여수 평창 속초 강릉 통영 남해 가족 커플 아이 어린이
성인 연인 친구 여행 휴식 힐링 프라이빗 럭셔리 모던 전통 한옥 목조 대리석 통유리 파노라마 창문
소파 책상 옷장 슬리퍼 가운 어메니티 수건 침구 매트리스 암막커튼 방음 커피머신 전기포트 전자레인지
세탁기 건조기 다리미 헤어드라이어 비데 드레스룸 거실 주방 식탁 해먹 불멍 월풀 자쿠지 족욕
마사지 트리트먼트 아로마 허니문 기념일 케이크 꽃 샴페인 웰컴드링크 해피아워 칵테일 맥주 막걸리
소주 전통주 시음 공방 체험 도예 한지 다도 템플스테이 명상 연등 축제 불꽃놀이 벚꽃 진달래 동백
단풍 억새 녹차밭 감귤 한라봉 과수원 농장 수확 요리 김치 비빔밥 불고기 갈비 회 전복죽 해산물
국수 만두 길거리음식 부침개 갤러리 박물관 도서관 서점 공연 재즈 라이브 노래방 영화관 오락실
당구 볼링 클라이밍 트램펄린 슬라이드 유수풀 파도풀 놀이터 탁아 베이비시터 컨시어지 발렛 짐보관
사물함 오름 올레길 성산일출봉 울산바위 권금성 광안리 동백섬 불국사 석굴암 보문호 오동도 돌산
대관령 월정사 주문진 양양 포항 거제 순천 담양 전주
""".split()
KO_VOCAB = list(dict.fromkeys(KO_VOCAB))
KO_PARTICLES = ["이", "가", "을", "를", "에서", "과", "와", "의", "은", "는", "으로", "에"]
KO_ENDINGS = ["있습니다.", "제공합니다.", "즐길 수 있습니다.", "이용하실 수 있습니다.",
              "준비되어 있습니다.", "가능합니다.", "보입니다."]

VIEWS = [  # (attribute, English, Korean)
    ("ocean", "Ocean View", "오션뷰"), ("garden", "Garden View", "가든뷰"),
    ("mountain", "Mountain View", "마운틴뷰"), ("city", "City View", "시티뷰"),
    ("pool", "Pool View", "풀뷰"), ("lake", "Lake View", "레이크뷰"),
    ("forest", "Forest View", "포레스트뷰"), ("harbor", "Harbor View", "하버뷰"),
]
VIEW_WEIGHTS = [30, 18, 16, 10, 8, 6, 6, 6]
GRADES = [("Standard", "스탠다드"), ("Superior", "슈페리어"), ("Deluxe", "디럭스"),
          ("Premier", "프리미어"), ("Executive", "이그제큐티브"), ("Junior Suite", "주니어 스위트"),
          ("Suite", "스위트"), ("Royal Suite", "로열 스위트"), ("Family", "패밀리"),
          ("Ondol", "온돌"), ("Villa", "빌라"), ("Penthouse", "펜트하우스"), ("Studio", "스튜디오")]
GRADE_WEIGHTS = [20, 16, 20, 8, 5, 6, 6, 2, 8, 5, 2, 1, 1]
BEDS = [("Twin", "트윈", 2), ("Double", "더블", 1), ("King", "킹", 1), ("Queen", "퀸", 1),
        ("Triple", "트리플", 3), ("Family Twin", "패밀리 트윈", 3)]
WINGS = [("", ""), ("", ""), ("", ""), (" (Tower)", " (타워동)"), (" (Annex)", " (별관)"),
         (" (Main Building)", " (본관)"), (" – Ocean Wing", " – 오션윙")]
ACCENTED = {"Deluxe": "Déluxe", "Cafe": "Café", "Residence": "Résidence", "Chateau": "Château"}
FACILITIES = [("Infinity Pool", "인피니티 수영장", True), ("Indoor Pool", "실내 수영장", False),
              ("Outdoor Hot Spring", "노천 온천", True), ("Spa", "스파", False),
              ("Sauna", "사우나", False), ("Fitness Center", "피트니스 센터", False),
              ("Kids Club", "키즈 클럽", False), ("Golf Course", "골프장", True),
              ("Ski Slope", "스키장", True), ("Water Park", "워터파크", True),
              ("Buffet Restaurant", "뷔페 레스토랑", False), ("Rooftop Bar", "루프탑 바", True),
              ("Cafe Lumière", "카페 뤼미에르", False), ("Lounge", "라운지", False),
              ("Karaoke", "노래방", False), ("Tennis Court", "테니스 코트", True),
              ("BBQ Terrace", "바베큐 테라스", True), ("Library Lounge", "도서관 라운지", False),
              ("Jjimjilbang", "찜질방", False), ("Chateau Wine Cellar", "샤토 와인 셀러", False)]
TICKETS = [("Spa Day Pass", "스파 이용권", 480), ("Water Park Ticket", "워터파크 입장권", 480),
           ("Cable Car Return Ticket", "케이블카 왕복권", 30),
           ("Breakfast Buffet Voucher", "조식 뷔페 이용권", 90), ("Lift Pass 1 Day", "리프트권 1일", 480),
           ("Golf Round 18 Holes", "골프 18홀 라운드", 300), ("Yacht Tour", "요트 투어", 90),
           ("Sunset Cruise", "선셋 크루즈", 60), ("Kayak Rental", "카약 대여", 120),
           ("Museum Entry", "박물관 입장권", 120), ("Hot Spring Pass", "온천 이용권", 240),
           ("Jjimjilbang Pass", "찜질방 이용권", 600), ("Cooking Class", "요리 클래스", 150)]
PACKAGES = [("Premium Spa Package", "프리미엄 스파 패키지"), ("Breakfast Included Package", "조식 포함 패키지"),
            ("Hot Spring Package", "온천 패키지"), ("Family Water Park Package", "가족 워터파크 패키지"),
            ("Romantic Getaway Package", "로맨틱 패키지"), ("Ski and Stay Package", "스키 패키지"),
            ("Golf and Stay Package", "골프 패키지"), ("Early Bird Package", "얼리버드 패키지"),
            ("Honeymoon Package", "허니문 패키지"), ("Résidence Long Stay Package", "레지던스 장기 투숙 패키지")]
AMENITIES = ["balcony", "bathtub", "minibar", "kitchen", "wifi", "coffee_machine", "terrace",
             "sauna", "ondol", "jacuzzi", "washer", "bidet", "nespresso", "bathrobe", "safe",
             "desk", "sofa", "air_purifier", "smart_tv", "hammock"]
FACILITY_AMENITIES = ["towels", "lockers", "showers", "loungers", "bar", "lifeguard", "kids_area",
                      "rental", "parking", "accessible"]
TYPE_WEIGHTS = [("room_type", 50), ("facility", 15), ("ticket", 20), ("package", 15)]


def cum(weights):
    return list(itertools.accumulate(weights))


class Gen:
    def __init__(self, n, seed):
        self.n = n
        self.seed = seed
        self.r = random.Random(seed)
        self.en_cw = cum(1.0 / (k ** ZIPF_S) for k in range(1, len(EN_VOCAB) + 1))
        self.ko_cw = cum(1.0 / (k ** ZIPF_S) for k in range(1, len(KO_VOCAB) + 1))
        self.view_cw = cum(VIEW_WEIGHTS)
        self.grade_cw = cum(GRADE_WEIGHTS)
        self.type_cw = cum(w for _, w in TYPE_WEIGHTS)
        self.prefix = "b%d" % seed
        # per resort: ids of non-package products so far, and room ids with their view
        self.parts = {slug: [] for slug, *_ in RESORTS}
        self.rooms = {slug: [] for slug, *_ in RESORTS}

    def pick(self, seq, cw):
        return seq[bisect.bisect_left(cw, self.r.random() * cw[-1])]

    def words(self, vocab, cw, k):
        return self.r.choices(vocab, cum_weights=cw, k=k)

    def en_text(self, k):
        out, sentence = [], []
        for w in self.words(EN_VOCAB, self.en_cw, k):
            sentence.append(w)
            if len(sentence) >= self.r.randint(6, 14):
                out.append(" ".join(sentence).capitalize() + ".")
                sentence = []
        if sentence:
            out.append(" ".join(sentence).capitalize() + ".")
        return " ".join(out)

    def ko_text(self, k):
        out, count = [], 0
        for w in self.words(KO_VOCAB, self.ko_cw, k):
            if self.r.random() < 0.3:
                w += self.r.choice(KO_PARTICLES)
            out.append(w)
            count += 1
            if count >= self.r.randint(6, 12):
                out.append(self.r.choice(KO_ENDINGS))
                count = 0
        if count:
            out.append(self.r.choice(KO_ENDINGS))
        return " ".join(out)

    def accent(self, name):
        if self.r.random() < 0.25:
            for plain, acc in ACCENTED.items():
                name = name.replace(plain, acc)
        return name

    def resorts(self):
        return [{"id": "rs_%s_%s" % (self.prefix, slug), "name": ko, "name_en": en,
                 "timezone": "Asia/Seoul", "currency": "KRW", "address": addr, "stars": stars}
                for slug, ko, en, addr, stars in RESORTS]

    def product(self, i):
        r = self.r
        slug = r.choice(RESORTS)[0]
        ptype = self.pick([t for t, _ in TYPE_WEIGHTS], self.type_cw)
        if ptype == "package" and not self.rooms[slug]:
            ptype = "room_type"  # a package needs a room of its resort first
        pid = "pr_%s_%06d" % (self.prefix, i)
        korean = r.random() < 1 / 3
        attrs, cap, comps, plan = {}, None, None, None
        if ptype == "room_type":
            view = self.pick(VIEWS, self.view_cw) if r.random() < 0.9 else None
            grade = self.pick(GRADES, self.grade_cw)
            bed = r.choice(BEDS)
            wing = r.choice(WINGS)
            en = " ".join(x for x in (view[1] if view else "", grade[0], bed[0]) if x) + wing[0]
            ko = " ".join(x for x in (view[2] if view else "", grade[1], bed[1]) if x) + wing[1]
            if view:
                attrs["view"] = view[0]
            attrs["beds"] = bed[2]
            attrs["pets"] = r.random() < 0.2
            attrs["size_m2"] = r.randint(18, 60) + (r.randint(0, 120) if "Suite" in grade[0] else 0)
            attrs["floor"] = r.randint(1, 30)
            attrs["amenities"] = sorted(r.sample(AMENITIES, r.randint(1, 6)))
            cap = {"unit": "rooms", "count": r.randint(2, 80)}
            plan = ("Standard", r.randint(8, 60) * 10000)
            self.rooms[slug].append((pid, view[0] if view else None))
        elif ptype == "facility":
            en, ko, outdoor = r.choice(FACILITIES)
            if r.random() < 0.5:
                view = self.pick(VIEWS, self.view_cw)
                attrs["view"] = view[0]
            attrs["outdoor"] = outdoor
            attrs["heated"] = r.random() < 0.5
            attrs["age_min"] = r.choice([0, 0, 0, 7, 13, 19])
            attrs["amenities"] = sorted(r.sample(FACILITY_AMENITIES, r.randint(1, 4)))
            cap = {"unit": "seats", "count": r.randint(20, 300)}
        elif ptype == "ticket":
            en, ko, minutes = r.choice(TICKETS)
            attrs["duration_min"] = minutes
            attrs["age_min"] = r.choice([0, 0, 3, 7, 13, 19])
            attrs["pets"] = r.random() < 0.05
            cap = {"unit": "seats", "count": r.randint(20, 200)}
            plan = ("Adult", r.randint(1, 15) * 10000)
        else:
            en, ko = r.choice(PACKAGES)
            room, view = r.choice(self.rooms[slug])
            picked = [room] + [p for p in r.sample(self.parts[slug], min(2, len(self.parts[slug])))
                               if p != room][: r.randint(0, 2)]
            comps = [{"product_id": p, "quantity": r.randint(1, 2)} for p in picked]
            attrs["nights"] = r.randint(1, 3)
            if view:
                attrs["view"] = view
            attrs["amenities"] = sorted(r.sample(AMENITIES, r.randint(1, 3)))
        if ptype != "package":
            self.parts[slug].append(pid)
        en = self.accent(en)
        nwords = r.randint(20, 80)
        doc = {"id": pid, "type": ptype, "resort_id": "rs_%s_%s" % (self.prefix, slug)}
        if korean:
            doc["name"] = ko
            if r.random() < 0.8:
                doc["name_en"] = en
            desc = self.ko_text(nwords)
            if r.random() < 0.3:  # bilingual listings, as in demo/catalog.json
                desc += " " + self.en_text(r.randint(8, 20))
        else:
            doc["name"] = en
            desc = self.en_text(nwords)
        doc["description"] = desc
        if r.random() < 0.02:
            doc["status"] = "inactive"
        doc["attributes"] = attrs
        if cap:
            doc["capacity"] = cap
        if comps:
            doc["components"] = comps
        doc["media"] = [{"url": "https://img.example.com/%s/%s/%d.jpg" % (slug, pid, k),
                         "kind": "image", "caption": doc["name"] if k == 0 else None}
                        for k in range(r.randint(0, 3))]
        rp = None
        if plan:
            base = plan[1]
            to = (RATE_FROM + datetime.timedelta(days=RATE_DAYS - 1)).isoformat()
            rp = {"id": "rp_%s_%06d" % (self.prefix, i), "product_id": pid, "name": plan[0],
                  "rules": [{"from": RATE_FROM.isoformat(), "to": to, "amount": base},
                            {"from": RATE_FROM.isoformat(), "to": to, "weekdays": ["fri", "sat"],
                             "amount": base * r.choice([11, 12, 13, 14, 15]) // 10}]}
        return doc, rp


def main(argv):
    if len(argv) != 3 or not argv[1].isdigit() or not argv[2].lstrip("-").isdigit():
        sys.stderr.write("usage: gen_catalog.py N SEED > catalog.json\n")
        return 2
    g = Gen(int(argv[1]), int(argv[2]))
    out = sys.stdout
    dump = lambda o: json.dumps(o, ensure_ascii=False, separators=(",", ":"))
    plans = []
    out.write('{"resorts":[\n')
    out.write(",\n".join(dump(x) for x in g.resorts()))
    out.write('\n],\n"products":[\n')
    for i in range(g.n):
        doc, rp = g.product(i)
        out.write((",\n" if i else "") + dump(doc))
        if rp:
            plans.append(rp)
    out.write('\n],\n"rate_plans":[\n')
    out.write(",\n".join(dump(x) for x in plans))
    out.write("\n]}\n")
    return 0


if __name__ == "__main__":
    sys.stdout.reconfigure(encoding="utf-8")
    sys.exit(main(sys.argv))
