package supervisor

// Running returns how many workers are ready and serving (0 once Run has
// returned).
func (s *Supervisor) Running() int {
	n := 0
	s.do(func() {
		for w := range s.workers {
			if w.phase == ready {
				n++
			}
		}
	})
	return n
}

func (s *Supervisor) replaced() {
	if s.cfg.OnReplace != nil {
		s.cfg.OnReplace()
	}
}
