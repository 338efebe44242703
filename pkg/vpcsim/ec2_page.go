package vpcsim

// describe is the shared shape of a paged Describe* call: the ids named by
// idParam (each must exist, as on EC2) or every item, then the filters,
// then one page of rendered items.
type describe[V, X any] struct {
	idParam string
	idKind  idKind
	// idsNotWithMax: EC2 refuses ids together with MaxResults for this
	// call. Its API reference says so for DescribeNetworkInterfaces and
	// DescribeInstances only; the other paged describes take both.
	idsNotWithMax bool
	// maxPage is the largest MaxResults EC2 accepts (1000 when 0).
	maxPage int
	all     func(w *world) []V
	byID    func(w *world, id string) (V, error)
	// key is an item's id, for NextToken (see paginate).
	key    func(V) string
	field  fieldFunc[V]
	render func(w *world, v V) X
}

// run answers the call in one read of the world.
func (d describe[V, X]) run(s *Sim, p *params) (items []X, next string, err error) {
	ids := p.ids(d.idKind, d.idParam)
	fs := p.filters()
	if p.err != nil {
		return nil, "", p.err
	}
	if d.idsNotWithMax {
		if err := noIDsWithMaxResults(p, d.idParam); err != nil {
			return nil, "", err
		}
	}
	maxPage := d.maxPage
	if maxPage == 0 {
		maxPage = 1000
	}
	sparse := s.inj.faults().PageBeforeFilter
	err = s.do(false, func(w *world) error {
		var views []V
		if len(ids) > 0 {
			var missing []string
			for _, id := range dedupe(ids) {
				v, err := d.byID(w, id)
				if ErrorCode(err) == d.idKind.notFound {
					missing = append(missing, id)
					continue
				}
				if err != nil {
					return err
				}
				views = append(views, v)
			}
			if len(missing) > 0 {
				return d.idKind.notFoundErr(missing)
			}
		} else {
			views = d.all(w)
		}
		page, n, err := pageFiltered(views, fs, d.field, p, 5, maxPage, d.key, sparse)
		if err != nil {
			return err
		}
		for _, v := range page {
			items = append(items, d.render(w, v))
		}
		next = n
		return nil
	})
	return items, next, err
}

// findByID returns the item of all whose id is id, or notFound's error.
func findByID[V any](all []V, idOf func(V) string, id string, notFound func(string) error) (V, error) {
	for _, v := range all {
		if idOf(v) == id {
			return v, nil
		}
	}
	var zero V
	return zero, notFound(id)
}

// viewByID is describe's byID for a resource looked up by id and answered as
// its view.
func viewByID[R, V any](lookup func(*world, string) (R, error), view func(*world, R) V) func(*world, string) (V, error) {
	return func(w *world, id string) (V, error) {
		r, err := lookup(w, id)
		if err != nil {
			var zero V
			return zero, err
		}
		return view(w, r), nil
	}
}
