// Behaviour of the portfolio page(s); see app.js for what every page shares.
