package impactsim

// touchOf returns the mutable state of action i, creating it.
func (a *account) touchOf(i uint32) *touch {
	x := &a.acts[i]
	if x.flags&flagTouched != 0 {
		return a.touched[i]
	}
	t := &touch{
		lastUpdated: x.creation,
		amount:      int64(x.amount), payout: int64(x.payout), clientCost: int64(x.clientCost),
		deltaAmount: int64(x.amount), deltaPayout: int64(x.payout),
		updates: 1,
	}
	a.touched[i] = t
	x.flags |= flagTouched
	if a.minTouchedCreation == 0 || x.creation < a.minTouchedCreation {
		a.minTouchedCreation = x.creation
	}
	return t
}

// modify sets a new amount and payout (1/10000 units) at time at.
func (a *account) modify(i uint32, at, amount, payout int64) {
	t := a.touchOf(i)
	t.deltaAmount, t.deltaPayout = amount-t.amount, payout-t.payout
	t.amount, t.payout = amount, payout
	t.clientCost = (payout*118/100 + 50) / 100 * 100
	t.lastUpdated = at
	t.updates++
	a.updates = append(a.updates, update{action: i, seq: t.updates, at: at, deltaAmount: t.deltaAmount, deltaPayout: t.deltaPayout})
}

// reverse zeroes the action at time at.
func (a *account) reverse(i uint32, at int64) {
	t := a.touchOf(i)
	t.deltaAmount, t.deltaPayout = -t.amount, -t.payout
	t.amount, t.payout, t.clientCost = 0, 0, 0
	t.reversed = true
	t.lastUpdated = at
	t.updates++
	a.updates = append(a.updates, update{action: i, seq: t.updates, reversed: true, at: at, deltaAmount: t.deltaAmount, deltaPayout: t.deltaPayout})
}
