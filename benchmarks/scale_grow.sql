-- The `scale` figure's growth step: copies of the seed rows (`{seed}`, the records loaded
-- through the real load path) shifted back by whole weeks, each copy with keys of its own.
-- Copy (week w, copy c) moves every timestamp back w weeks and adds (w * copies + c) * stride
-- to the key; (0, 0) is the seed itself and is skipped. Filled in by benchmarks/scale.py.
INSERT INTO {table} ({columns})
SELECT {expressions}
FROM {seed} AS s
CROSS JOIN generate_series(%(first_week)s, %(last_week)s) AS w
CROSS JOIN generate_series(0, %(copies)s - 1) AS c
WHERE (w, c) <> (0, 0)
ORDER BY w DESC, s.event_time;
