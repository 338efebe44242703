package hostcontract

import "testing"

func TestRouteTable(t *testing.T) {
	for _, tc := range []struct{ card, dev, want int }{
		{0, 0, 254}, {0, 1, 2}, {0, 14, 15}, {1, 0, 10100}, {1, 2, 10102}, {3, 7, 10307},
	} {
		if got := RouteTable(tc.card, tc.dev); got != tc.want {
			t.Errorf("RouteTable(%d, %d) = %d, want %d", tc.card, tc.dev, got, tc.want)
		}
	}
}
